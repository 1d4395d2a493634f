//! The `run` command's engine: start everything, wait, shut down in order
//! (readers, then sinks, then the last checkpoints).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::sinks::{collect_sink_result, pick_error, spawn_sinks, SinkShared};
use super::{checkpointer, progress, EngineError};
use crate::config::{ClickHouseMode, PipelineConfig, SinkConfig};
use crate::coordinator::{AckTracker, CheckpointStore};
use crate::source::streams::{run_table, StreamsApi, TableContext, TableProgress, TableStream};
use crate::stats::StatsSnapshot;

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Exit once every shard is read to its current end and everything read is acknowledged.
    pub exit_when_caught_up: bool,
    /// How often to log a progress line.
    pub progress_interval: Duration,
    /// `dynamo-cdc snapshot`: snapshot these tables (all when empty), then
    /// stop instead of streaming. `None` for `run`.
    pub snapshot_only: Option<Vec<String>>,
}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Counters at the end.
    pub stats: StatsSnapshot,
    /// True when the run ended because it caught up (not by a signal).
    pub caught_up: bool,
}

/// Runs a pipeline until a signal, a fatal error, or (with
/// `exit_when_caught_up`) until it has caught up.
pub async fn run(config: &PipelineConfig, options: RunOptions) -> Result<RunSummary, EngineError> {
    super::create_state_dir(&config.state_dir)?;
    let store = Arc::new(Mutex::new(CheckpointStore::open(
        &CheckpointStore::path_in(&config.state_dir),
    )?));
    let api = Arc::new(
        StreamsApi::connect(&config.aws, &config.source)
            .await
            .map_err(EngineError::Aws)?,
    );
    if let Some(selected) = &options.snapshot_only {
        for name in selected {
            if !config.tables.iter().any(|t| t.name == *name) {
                return Err(EngineError::UnknownTable {
                    table: name.clone(),
                    known: config
                        .tables
                        .iter()
                        .map(|t| t.name.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
    }
    let tables = describe_tables(config, &api).await?;

    let tracker = AckTracker::new();
    let shared = SinkShared::new(&config.state_dir);
    let (cancel, stats) = (shared.cancel.clone(), Arc::clone(&shared.stats));
    let dead_letters = Arc::clone(&shared.dead_letters);

    let schemas: Vec<_> = tables.iter().map(|t| t.schema.clone()).collect();
    let (senders, mut sink_tasks) =
        spawn_sinks(&config.sinks, &schemas, &config.aws, &shared).await?;

    let checkpoint_stop = CancellationToken::new();
    let checkpoint_task = tokio::spawn(checkpointer::run_checkpointer(
        Arc::clone(&tracker),
        Arc::clone(&store),
        checkpoint_stop.clone(),
    ));
    let reporter_stop = CancellationToken::new();
    tokio::spawn(progress::report(
        Arc::clone(&stats),
        Arc::clone(&tracker),
        options.progress_interval,
        reporter_stop.clone(),
    ));

    let mut progress_flags = Vec::new();
    let mut table_tasks = JoinSet::new();
    for (table_config, table) in config.tables.iter().zip(&tables) {
        let flag = Arc::new(TableProgress::default());
        progress_flags.push(Arc::clone(&flag));
        tracing::info!(table = %table.schema.name, stream = %table.stream_arn, "following stream");
        table_tasks.spawn(run_table(TableContext {
            api: Arc::clone(&api),
            table: Arc::new(table_config.clone()),
            stream_arn: Arc::clone(&table.stream_arn),
            settings: config.source.clone(),
            store: Arc::clone(&store),
            tracker: Arc::clone(&tracker),
            sinks: Arc::clone(&senders),
            dead_letters: Arc::clone(&dead_letters),
            stats: Arc::clone(&stats),
            progress: flag,
            cancel: cancel.clone(),
            schema: table.schema.clone(),
            progress_interval: options.progress_interval,
            snapshot_command: options
                .snapshot_only
                .as_ref()
                .map(|only| only.is_empty() || only.contains(&table_config.name)),
        }));
    }
    drop(senders);

    let mut errors: Vec<EngineError> = Vec::new();
    let mut caught_up = false;
    let mut sinks_done = false;
    while !table_tasks.is_empty() {
        tokio::select! {
            joined = table_tasks.join_next() => {
                match joined {
                    Some(Ok(Ok(()))) | None => {}
                    Some(Ok(Err(err))) => {
                        errors.push(err.into());
                        cancel.cancel();
                    }
                    Some(Err(join)) => {
                        errors.push(EngineError::Internal(format!("table task failed: {join}")));
                        cancel.cancel();
                    }
                }
            }
            joined = sink_tasks.join_next(), if !sinks_done => {
                match joined {
                    Some(result) => {
                        collect_sink_result(result, &mut errors);
                        cancel.cancel();
                    }
                    None => sinks_done = true,
                }
            }
            () = tokio::time::sleep(Duration::from_millis(100)), if options.exit_when_caught_up && !cancel.is_cancelled() => {
                let all_caught_up = progress_flags.iter().all(|p| p.caught_up.load(Ordering::Relaxed));
                if all_caught_up && tracker.in_flight() == 0 {
                    tracing::info!("caught up: every shard is read to its current end and every change is acknowledged");
                    caught_up = true;
                    cancel.cancel();
                }
            }
        }
    }
    // Every reader has stopped and dropped its sink senders: the sinks drain and stop.
    while let Some(result) = sink_tasks.join_next().await {
        collect_sink_result(result, &mut errors);
    }
    checkpoint_stop.cancel();
    reporter_stop.cancel();
    match checkpoint_task.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => errors.push(err.into()),
        Err(join) => errors.push(EngineError::Internal(format!(
            "checkpoint writer failed: {join}"
        ))),
    }
    checkpointer::flush(&tracker, &store).await?;
    let stats = stats.snapshot();
    if let Some(first) = pick_error(errors) {
        return Err(first);
    }
    Ok(RunSummary { stats, caught_up })
}

/// Looks up every table's key schema and stream, and checks that the stream
/// carries what the sinks need.
async fn describe_tables(
    config: &PipelineConfig,
    api: &StreamsApi,
) -> Result<Vec<TableStream>, EngineError> {
    let needs_new_image = config.sinks.iter().any(|s| match s {
        SinkConfig::Sqlite(_) | SinkConfig::Postgres(_) => true,
        SinkConfig::Clickhouse(c) => c.mode == ClickHouseMode::State,
        SinkConfig::Jsonl(_) | SinkConfig::S3(_) => false,
    });
    let mut tables = Vec::new();
    for table in &config.tables {
        let described = api
            .describe_table(&table.name, table.stream_arn.as_deref())
            .await
            .map_err(|source| EngineError::Source {
                table: table.name.clone(),
                endpoint: api.endpoint().to_owned(),
                source,
            })?;
        if needs_new_image && !described.view_type.has_new_image() {
            return Err(EngineError::ViewType {
                table: table.name.clone(),
                view: described.view_type,
            });
        }
        tables.push(described);
    }
    Ok(tables)
}
