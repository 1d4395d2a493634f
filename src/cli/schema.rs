//! `dynamo-cdc schema`: the schema history of `columns = "auto"` sinks, and
//! `schema infer` (see [`super::schema_infer`]).

use std::process::ExitCode;

use super::args::SchemaCommand;
use crate::config;
use crate::schema::history::render;
use crate::sink::SinkEnv;

/// Runs a schema command.
pub async fn execute(command: SchemaCommand) -> anyhow::Result<ExitCode> {
    match command {
        SchemaCommand::Show {
            config,
            sink,
            table,
            json,
        } => show(&config.config, sink.as_deref(), table.as_deref(), json).await,
        SchemaCommand::Infer {
            config,
            table,
            sample,
            format,
        } => super::schema_infer::infer(&config.config, table.as_deref(), sample, format).await,
    }
}

async fn show(
    path: &std::path::Path,
    only_sink: Option<&str>,
    only_table: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let pipeline = config::load_file(path)?;
    if let Some(name) = only_sink {
        anyhow::ensure!(
            pipeline.sinks.iter().any(|s| s.name() == name),
            "no sink named {name:?} in {} (sinks: {})",
            path.display(),
            pipeline
                .sinks
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut shown = 0;
    for sink in &pipeline.sinks {
        let name = sink.name();
        if only_sink.is_some_and(|only| only != name) {
            continue;
        }
        let env = SinkEnv {
            name: &name,
            tables: &[],
            aws: &pipeline.aws,
        };
        let Some(mut events) = sink.sink.schema_history(env).await? else {
            continue;
        };
        events.retain(|e| only_table.is_none_or(|t| t == e.table));
        shown += 1;
        if json {
            for event in &events {
                println!("{}", serde_json::json!({"sink": name, "event": event}));
            }
        } else {
            println!(
                "sink {name} ({}): {} change(s)",
                sink.sink.kind(),
                events.len()
            );
            print!("{}", render(&events));
        }
    }
    anyhow::ensure!(
        shown > 0,
        "no sink in {} keeps a schema history (only clickhouse, postgres and s3 sinks with columns = \"auto\", and elasticsearch with mapping = \"auto\", do)",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
