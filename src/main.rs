//! The `dynamo-cdc` binary: parses arguments, sets up logging and runs a command.

use std::process::ExitCode;

use clap::Parser;
use dynamo_cdc::cli::{execute, init_logging, Cli};

/// mimalloc: per-thread heaps, so that changes decoded on one thread and
/// freed on a sink's thread cost no lock (the system allocator spent a
/// fifth of the replay's time there).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` and `mi_option_arena_eager_commit` in mimalloc.h's
/// `mi_option_e` (the same in the v2 and v3 sources libmimalloc-sys bundles;
/// its Rust constants predate these names).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// How long freed pages stay mapped before they go back to the OS.
const PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// Keeps the allocator's resident memory near what is in use without paying
/// for it on every batch: freed pages go back to the OS once they have been
/// unused for a second (returning them at once cost a quarter of a replay's
/// CPU in page faults and zeroing, as the next batch faulted them in again;
/// see docs/BENCHMARKS.md), and arenas are committed as they are used
/// rather than up front. mimalloc's own environment variables
/// (`MIMALLOC_PURGE_DELAY`, `MIMALLOC_ARENA_EAGER_COMMIT`) take precedence.
fn bound_allocator_memory() {
    for (option, variable, value) in [
        (
            MI_OPTION_PURGE_DELAY,
            "MIMALLOC_PURGE_DELAY",
            PURGE_DELAY_MS,
        ),
        (
            MI_OPTION_ARENA_EAGER_COMMIT,
            "MIMALLOC_ARENA_EAGER_COMMIT",
            0,
        ),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: setting an option is a plain store that mimalloc allows at any time.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
}

fn main() -> ExitCode {
    bound_allocator_memory();
    // Before any client exists: reqwest and object_store take rustls's default provider.
    dynamo_cdc::tls::install_default_provider();
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
