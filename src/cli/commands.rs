//! The commands' bodies.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;

use super::{CheckpointsCommand, Command};
use crate::app::{self, RunOptions};
use crate::config::{self, PipelineConfig};
use crate::coordinator::CheckpointStore;

/// Per-sink counts for a summary line: `name: N written, M rejected; …`.
fn sink_counts(stats: &crate::stats::StatsSnapshot) -> String {
    stats
        .sinks
        .iter()
        .map(|(name, c)| format!("{name}: {} written, {} rejected", c.written, c.rejected))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs a parsed command; the exit code on success, an error otherwise.
pub async fn execute(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run {
            config,
            exit_when_caught_up,
            progress_interval,
        } => {
            let options = RunOptions {
                exit_when_caught_up,
                progress_interval,
                snapshot_only: None,
            };
            run(&config.config, options).await?;
        }
        Command::Snapshot {
            config,
            tables,
            progress_interval,
        } => snapshot(&config.config, tables, progress_interval).await?,
        Command::Replay {
            config,
            table,
            keys,
            files,
        } => {
            let options = app::ReplayOptions {
                table,
                keys: keys.map(|k| k.0).unwrap_or_default(),
                files,
            };
            replay(&config.config, options).await?;
        }
        Command::Load {
            config,
            exit_when_idle,
        } => load(&config.config, exit_when_idle).await?,
        Command::FilterTest {
            config,
            table,
            json,
            loader,
            record_file,
        } => {
            let options = app::FilterTestOptions {
                table,
                file: record_file,
            };
            filter_test(&config.config, loader, &options, json).await?;
        }
        Command::Validate { config } => validate(&config.config)?,
        Command::ConfigSchema { kind, markdown } => super::config_schema::print(kind, markdown)?,
        Command::Checkpoints { command } => return checkpoints(command).await,
        Command::Schema { command } => return super::schema::execute(command).await,
        Command::Status { config, json } => {
            let pipeline = config::load_file(&config.config)?;
            return super::status::show(&pipeline, json).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `run`: follows the streams until a signal (or until caught up), starting
/// again in the same process when the error asks for it (a lost lease
/// table, a replaced stream), then logs a summary.
async fn run(path: &Path, options: RunOptions) -> anyhow::Result<()> {
    let pipeline = config::load_file(path)?;
    let summary = loop {
        match app::run(&pipeline, options.clone()).await {
            Err(err) if err.wants_restart() => {
                tracing::warn!("{err}; restarting");
            }
            other => break other?,
        }
    };
    let sinks = sink_counts(&summary.stats);
    tracing::info!(
        records_read = summary.stats.records_read,
        decode_errors = summary.stats.decode_errors,
        other_table_records = summary.stats.other_table_records,
        iterator_renewals = summary.stats.iterator_renewals,
        filtered = summary.stats.filtered,
        snapshot_items = summary.stats.snapshot_items,
        snapshot_pages = summary.stats.snapshot_pages,
        caught_up = summary.caught_up,
        "stopped: {} records read; {} snapshot items in {} Scan pages; {}",
        summary.stats.records_read,
        summary.stats.snapshot_items,
        summary.stats.snapshot_pages,
        sinks
    );
    Ok(())
}

/// `snapshot`: copies the selected tables (all when `tables` is empty),
/// then stops.
async fn snapshot(
    path: &Path,
    tables: Vec<String>,
    progress_interval: Duration,
) -> anyhow::Result<()> {
    let pipeline = config::load_file(path)?;
    let options = RunOptions {
        exit_when_caught_up: false,
        progress_interval,
        snapshot_only: Some(tables),
    };
    let summary = app::run(&pipeline, options).await?;
    tracing::info!(
        snapshot_items = summary.stats.snapshot_items,
        snapshot_pages = summary.stats.snapshot_pages,
        "stopped: {} snapshot items in {} Scan pages; `dynamo-cdc run` streams on from the recorded positions",
        summary.stats.snapshot_items,
        summary.stats.snapshot_pages,
    );
    Ok(())
}

/// `replay`: feeds recorded changes to the pipeline's sinks.
async fn replay(path: &Path, options: app::ReplayOptions) -> anyhow::Result<()> {
    let pipeline = config::load_file(path)?;
    let summary = app::run_replay(&pipeline, options).await?;
    let sinks = sink_counts(&summary.stats);
    tracing::info!(
        records_read = summary.stats.records_read,
        bad_input = summary.bad_input,
        filtered = summary.stats.filtered,
        "stopped: {} records replayed, {} undecodable (dead-lettered); {}",
        summary.stats.records_read,
        summary.bad_input,
        sinks
    );
    Ok(())
}

/// `load`: loads the objects the queue announces.
async fn load(path: &Path, exit_when_idle: bool) -> anyhow::Result<()> {
    let loader = config::load_loader_file(path)?;
    let summary = app::run_loader(&loader, app::LoadOptions { exit_when_idle }).await?;
    tracing::info!(
        objects = summary.objects,
        dead_objects = summary.dead_objects,
        records = summary.stats.records_read,
        "stopped: {} objects loaded, {} dead-lettered, {} changes read",
        summary.objects,
        summary.dead_objects,
        summary.stats.records_read
    );
    Ok(())
}

/// `filter-test`: shows what a pipeline's (or loader's) filters and
/// transforms do to recorded changes.
async fn filter_test(
    path: &Path,
    loader: bool,
    options: &app::FilterTestOptions,
    json: bool,
) -> anyhow::Result<()> {
    if loader {
        let loader = config::load_loader_file(path)?;
        super::filter_test::print(app::FilterTestConfig::Loader(&loader), options, json).await
    } else {
        let pipeline = config::load_file(path)?;
        super::filter_test::print(app::FilterTestConfig::Pipeline(&pipeline), options, json).await
    }
}

/// `validate`: loads the config and names its tables and sinks.
fn validate(path: &Path) -> anyhow::Result<()> {
    let pipeline = config::load_file(path)?;
    println!(
        "{}: ok ({} table(s): {}; {} sink(s): {})",
        path.display(),
        pipeline.tables.len(),
        pipeline
            .tables
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        pipeline.sinks.len(),
        pipeline
            .sinks
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", "),
    );
    Ok(())
}

fn open_store(pipeline: &PipelineConfig) -> anyhow::Result<CheckpointStore> {
    let path = CheckpointStore::path_in(&pipeline.state_dir);
    anyhow::ensure!(
        path.exists(),
        "no checkpoint store at {} (nothing has run with this state_dir yet)",
        path.display()
    );
    Ok(CheckpointStore::open(&path)?)
}

async fn checkpoints(command: CheckpointsCommand) -> anyhow::Result<ExitCode> {
    match command {
        CheckpointsCommand::Show { config, json } => {
            let pipeline = config::load_file(&config.config)?;
            if pipeline.coordinator.mode == config::CoordinatorMode::LeaseTable {
                return super::leases::show_leases(&pipeline, json).await;
            }
            let rows = open_store(&pipeline)?.all()?;
            if json {
                for row in &rows {
                    println!(
                        "{}",
                        serde_json::json!({
                            "table": row.table,
                            "stream_arn": row.stream_arn,
                            "shard": row.shard,
                            "sequence": row.checkpoint.sequence.as_ref().map(|s| s.as_str()),
                            "finished": row.checkpoint.finished,
                            "updated_at": format_time(row.updated_at_ms),
                        })
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            if rows.is_empty() {
                println!("no checkpoints");
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<20} {:<28} {:<42} {:<9} {:<24} stream",
                "table", "shard", "sequence", "finished", "updated"
            );
            for row in rows {
                println!(
                    "{:<20} {:<28} {:<42} {:<9} {:<24} {}",
                    row.table,
                    row.shard,
                    row.checkpoint.sequence.as_ref().map_or("-", |s| s.as_str()),
                    if row.checkpoint.finished { "yes" } else { "no" },
                    format_time(row.updated_at_ms),
                    row.stream_arn
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CheckpointsCommand::Import {
            config,
            kcl_table,
            table,
        } => {
            let pipeline = config::load_file(&config.config)?;
            super::import::import(&pipeline, &kcl_table, table.as_deref()).await
        }
        CheckpointsCommand::Reset { config, table, all } => {
            let pipeline = config::load_file(&config.config)?;
            let mut store = open_store(&pipeline)?;
            let target = if all { None } else { table.as_deref() };
            let deleted = store.reset(target).with_context(|| {
                format!("resetting checkpoints in {}", pipeline.state_dir.display())
            })?;
            match target {
                Some(table) => println!("deleted {deleted} checkpoint(s) of table {table}"),
                None => println!("deleted {deleted} checkpoint(s)"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn format_time(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}
