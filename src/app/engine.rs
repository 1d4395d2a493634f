//! The `run` command's engine: start everything, wait, shut down in order
//! (readers, then sinks, then the last checkpoints).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::dimension::Dimensions;
use super::pipeline::Pipeline;
use super::sinks::{
    collect_sink_result, join_sinks, pick_error, SinkSenders, SinkTasks, TableStages,
};
use super::{checkpointer, progress, EngineError};
use crate::config::{OtherTablesPolicy, PipelineConfig, TableConfig};
use crate::coordinator::{AckTracker, CheckpointStore, Ownership};
use crate::observe::Health;
use crate::source::registry::{self, SourceKind, StartReader};
use crate::source::shard::ShardSource;
use crate::source::shards::{run_table, TableContext, TableError, TableProgress};
use crate::source::streams::{StreamsApi, TableStream};
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
///
/// The signal handler and the probes come first: while start-up waits
/// (tables described, sinks connected, the lease table joined), `/healthz`
/// answers 200 and `/readyz` 503 with `starting: <what it waits for>`, and
/// a SIGTERM or SIGINT ends the run cleanly (`Ok`, nothing read).
pub async fn run(config: &PipelineConfig, options: RunOptions) -> Result<RunSummary, EngineError> {
    let pipeline = Pipeline::open(&config.state_dir, Some(&config.metrics)).await?;
    let (shared, tracker) = (&pipeline.shared, &pipeline.tracker);
    let Some(started) = pipeline
        .start_up(start_up(config, &options, &pipeline))
        .await?
    else {
        return Ok(RunSummary {
            stats: shared.stats.snapshot(),
            caught_up: false,
        });
    };
    let Started {
        api,
        tables,
        senders,
        sink_tasks,
        ownership: ownership_runtime,
        dimensions: _dimensions,
    } = started;
    let ownership = Arc::clone(&ownership_runtime.ownership);
    let checkpoints = checkpointer::Writer::start(tracker, &ownership);
    let reporter_stop = CancellationToken::new();
    let _stop_reporter = reporter_stop.clone().drop_guard();
    tokio::spawn(progress::report(
        Arc::clone(&shared.stats),
        Arc::clone(tracker),
        options.progress_interval,
        reporter_stop,
    ));
    let parts = RunnerParts {
        api: &api,
        config,
        ownership: &ownership,
        snapshots: &ownership_runtime.snapshots,
        tracker,
        sinks: &senders,
        dead_letters: &shared.dead_letters,
        stats: &shared.stats,
        cancel: &shared.cancel,
        options: &options,
    };
    let (table_tasks, progress_flags) = spawn_tables(&parts, &tables)?;
    drop(senders);
    pipeline.started();
    let run = Running {
        table_tasks,
        sink_tasks,
        progress: progress_flags,
        errors: Vec::new(),
    };
    let (mut errors, caught_up) = run.supervise(&shared.cancel, tracker, &options).await;
    // The last checkpoints and the lease release come after a failure too;
    // their own errors must not hide the failure that stopped the run.
    checkpoints
        .finish(tracker, ownership.as_ref(), &mut errors)
        .await;
    if let Err(err) = ownership_runtime.finish().await {
        errors.push(err);
    }
    let stats = shared.stats.snapshot();
    match pick_error(errors) {
        Some(first) => Err(first),
        None => Ok(RunSummary { stats, caught_up }),
    }
}

/// What start-up built: everything the readers need.
struct Started {
    api: Arc<StreamsApi>,
    tables: Vec<TableStream>,
    senders: SinkSenders,
    sink_tasks: SinkTasks,
    ownership: super::ownership::OwnershipRuntime,
    /// Keeps the dimension tables fresh while it lives.
    dimensions: Dimensions,
}

/// The steps that may wait on other systems, each announced to `/readyz`:
/// the checkpoint store, DynamoDB, the tables, the dimension tables, the
/// sinks and the lease table.
async fn start_up(
    config: &PipelineConfig,
    options: &RunOptions,
    pipeline: &Pipeline,
) -> Result<Started, EngineError> {
    let shared = &pipeline.shared;
    let health = &shared.stats.probes.health;
    health.starting("opening the checkpoint store");
    let store = Arc::new(Mutex::new(CheckpointStore::open(
        &CheckpointStore::path_in(&config.state_dir),
    )?));
    health.starting("configuring the AWS clients");
    let api = Arc::new(
        StreamsApi::connect(&config.aws, &config.source)
            .await
            .map_err(EngineError::Aws)?,
    );
    if let Some(selected) = &options.snapshot_only {
        check_selected(config, selected)?;
    }
    let tables = describe_tables(config, &api, health).await?;
    let schemas: Vec<_> = tables.iter().map(|t| t.schema.clone()).collect();
    health.starting("loading the dimension tables");
    let (stages, dimensions) = TableStages::start_pipeline(config).await?;
    let (senders, sink_tasks) = pipeline
        .spawn_sinks(&config.sinks, &schemas, &config.aws, stages)
        .await?;
    health.starting("joining the shard owners");
    let ownership = super::ownership::start(config, &api, &store, &shared.cancel).await?;
    Ok(Started {
        api,
        tables,
        senders,
        sink_tasks,
        ownership,
        dimensions,
    })
}

/// `dynamo-cdc snapshot TABLE…`: every named table must be configured.
fn check_selected(config: &PipelineConfig, selected: &[String]) -> Result<(), EngineError> {
    match selected
        .iter()
        .find(|name| !config.tables.iter().any(|t| t.name == **name))
    {
        None => Ok(()),
        Some(name) => Err(EngineError::UnknownTable {
            table: name.clone(),
            known: config
                .tables
                .iter()
                .map(|t| t.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Running stream runners, one per stream group.
type TableTasks = JoinSet<Result<(), TableError>>;

/// Starts one stream runner per stream group; returns them with their
/// caught-up flags.
fn spawn_tables(
    parts: &RunnerParts<'_>,
    tables: &[TableStream],
) -> Result<(TableTasks, Vec<Arc<TableProgress>>), EngineError> {
    let (config, api) = (parts.config, parts.api);
    let mut progress_flags = Vec::new();
    let mut table_tasks = JoinSet::new();
    for group in stream_groups(config, tables) {
        let flag = Arc::new(TableProgress::default());
        progress_flags.push(Arc::clone(&flag));
        let mut reader = SpawnReader {
            parts,
            group: &group,
            progress: flag,
            tasks: &mut table_tasks,
        };
        let endpoint = config.aws.kinesis_endpoint_url.as_deref();
        registry::open(api, &config.source, endpoint, &group.tables, &mut reader).map_err(
            |source| EngineError::Source {
                table: group.tables[0].0.name.clone(),
                endpoint: api.endpoint().to_owned(),
                source,
            },
        )?;
    }
    Ok((table_tasks, progress_flags))
}

/// Starts a stream group's runner with the source the registry built.
struct SpawnReader<'p, 'a> {
    parts: &'p RunnerParts<'a>,
    group: &'p StreamGroup<'a>,
    progress: Arc<TableProgress>,
    tasks: &'p mut TableTasks,
}

impl StartReader for SpawnReader<'_, '_> {
    fn start<S: ShardSource>(&mut self, source: S) {
        let context = self
            .parts
            .context(source, self.group, Arc::clone(&self.progress));
        self.tasks.spawn(run_table(context));
    }
}

/// The running readers and sinks, and the errors that stopped them.
struct Running {
    table_tasks: TableTasks,
    sink_tasks: SinkTasks,
    progress: Vec<Arc<TableProgress>>,
    errors: Vec<EngineError>,
}

impl Running {
    /// Waits for the readers (stopping everything at the first failure,
    /// or once caught up when asked), then for the sinks to drain. Returns
    /// the errors and whether the run caught up.
    async fn supervise(
        mut self,
        cancel: &CancellationToken,
        tracker: &AckTracker,
        options: &RunOptions,
    ) -> (Vec<EngineError>, bool) {
        let mut caught_up = false;
        let mut sinks_done = false;
        while !self.table_tasks.is_empty() {
            tokio::select! {
                joined = self.table_tasks.join_next() => self.table_ended(joined, cancel),
                joined = self.sink_tasks.join_next(), if !sinks_done => match joined {
                    Some(result) => {
                        collect_sink_result(result, &mut self.errors);
                        cancel.cancel();
                    }
                    None => sinks_done = true,
                },
                () = tokio::time::sleep(Duration::from_millis(100)), if options.exit_when_caught_up && !cancel.is_cancelled() => {
                    let all_caught_up = self.progress.iter().all(|p| p.caught_up.load(Ordering::Relaxed));
                    if all_caught_up && tracker.in_flight() == 0 {
                        tracing::info!("caught up: every shard is read to its current end and every change is acknowledged");
                        caught_up = true;
                        cancel.cancel();
                    }
                }
            }
        }
        // Every reader has stopped and dropped its sink senders: the sinks drain and stop.
        join_sinks(&mut self.sink_tasks, &mut self.errors).await;
        (self.errors, caught_up)
    }

    fn table_ended(
        &mut self,
        joined: Option<Result<Result<(), TableError>, tokio::task::JoinError>>,
        cancel: &CancellationToken,
    ) {
        match joined {
            Some(Ok(Ok(()))) | None => {}
            Some(Ok(Err(err))) => {
                let err = EngineError::from(err);
                tracing::error!("stopping: {err}");
                self.errors.push(err);
                cancel.cancel();
            }
            Some(Err(join)) => {
                tracing::error!("stopping: table task failed: {join}");
                self.errors.push(EngineError::Task {
                    task: "table task",
                    source: join,
                });
                cancel.cancel();
            }
        }
    }
}

/// Looks up every table's key schema and stream, and checks that the stream
/// carries what the sinks need.
async fn describe_tables(
    config: &PipelineConfig,
    api: &StreamsApi,
    health: &Health,
) -> Result<Vec<TableStream>, EngineError> {
    let needs_new_image = config
        .sinks
        .iter()
        .any(|entry| entry.sink.needs_new_images());
    let mut tables = Vec::new();
    for (index, table) in config.tables.iter().enumerate() {
        health.starting(format!("describing table {}", table.name));
        let described =
            registry::describe(api, table)
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
        super::view_check::check_filters(config, index, described.view_type)?;
        tables.push(described);
    }
    Ok(tables)
}

/// The tables one stream runner serves: one per DynamoDB stream, all the
/// tables of one Kinesis stream together (the first is the lead, whose
/// policies the validated config makes shared).
struct StreamGroup<'a> {
    tables: Vec<(&'a TableConfig, &'a TableStream)>,
}

fn stream_groups<'a>(
    config: &'a PipelineConfig,
    tables: &'a [TableStream],
) -> Vec<StreamGroup<'a>> {
    let mut groups: Vec<StreamGroup<'a>> = Vec::new();
    for (table_config, table) in config.tables.iter().zip(tables) {
        let same_stream =
            |g: &StreamGroup<'_>| SourceKind::same_reader(g.tables[0].0, table_config);
        match groups.iter_mut().find(|g| same_stream(g)) {
            Some(group) => group.tables.push((table_config, table)),
            None => groups.push(StreamGroup {
                tables: vec![(table_config, table)],
            }),
        }
    }
    groups
}

/// What every stream runner shares.
struct RunnerParts<'a> {
    api: &'a Arc<StreamsApi>,
    config: &'a PipelineConfig,
    ownership: &'a Arc<dyn Ownership>,
    snapshots: &'a Arc<dyn crate::coordinator::SnapshotState>,
    tracker: &'a Arc<AckTracker>,
    sinks: &'a SinkSenders,
    dead_letters: &'a Arc<crate::dead_letter::DeadLetters>,
    stats: &'a Arc<crate::stats::Stats>,
    cancel: &'a CancellationToken,
    options: &'a RunOptions,
}

impl RunnerParts<'_> {
    fn context<S: ShardSource>(
        &self,
        source: S,
        group: &StreamGroup<'_>,
        progress: Arc<TableProgress>,
    ) -> TableContext<S> {
        let (lead, table) = group.tables[0];
        let kind = SourceKind::of(lead);
        let selected = |name: &str| {
            self.options
                .snapshot_only
                .as_ref()
                .map(|only| only.is_empty() || only.iter().any(|t| t == name))
        };
        TableContext {
            source: Arc::new(source),
            api: Arc::clone(self.api),
            table: Arc::new(lead.clone()),
            snapshot_versions: kind.snapshot_versions(),
            dead_letter_other_tables: self.config.source.kinesis_other_tables
                == OtherTablesPolicy::DeadLetter,
            settings: crate::config::SourceSettings {
                batch_size: kind.batch_size(&self.config.source),
                ..self.config.source.clone()
            },
            ownership: Arc::clone(self.ownership),
            snapshots: Arc::clone(self.snapshots),
            tracker: Arc::clone(self.tracker),
            sinks: Arc::clone(self.sinks),
            dead_letters: Arc::clone(self.dead_letters),
            stats: Arc::clone(self.stats),
            progress,
            cancel: self.cancel.clone(),
            schema: table.schema.clone(),
            progress_interval: self.options.progress_interval,
            snapshot_command: selected(&lead.name),
        }
    }
}
