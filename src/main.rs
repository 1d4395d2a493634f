//! The `dynamo-cdc` binary: parses arguments, sets up logging and runs a command.

use std::process::ExitCode;

use clap::Parser;
use dynamo_cdc::cli::{execute, init_logging, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(code) => code,
        Err(err) => {
            let message = one_line(&err);
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The error and those of its causes whose text it does not already include,
/// on one line.
fn one_line(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message.replace('\n', " ")
}
