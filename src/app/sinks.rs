//! Builds and starts the configured sinks, each behind its own channel and task.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::EngineError;
use crate::config::{AwsConfig, LoaderConfig, PipelineConfig, SinkEntry};
use crate::coordinator::Fanout;
use crate::dead_letter::DeadLetters;
use crate::model::TableSchema;
use crate::sink::{SinkContext, SinkEnv, SinkError};
use crate::stats::Stats;
use crate::transform::{Enrichment, FilterSpec, Routes, SinkRoute, Stage, TransformConfig};

/// Chunks buffered per sink before producers wait (backpressure).
const SINK_QUEUE: usize = 8;

/// Running sink tasks, each ending with its name and result.
pub(super) type SinkTasks = JoinSet<(String, Result<(), SinkError>)>;

/// The channels into the sinks, with the sinks' names.
pub(super) use crate::coordinator::SinkSenders;

/// What every sink task shares.
pub(super) struct SinkShared {
    pub dead_letters: Arc<DeadLetters>,
    pub cancel: CancellationToken,
    pub stats: Arc<Stats>,
}

impl SinkShared {
    /// Fresh stats, dead letters under `state_dir/dead-letters`, and a cancel
    /// token that SIGINT/SIGTERM trip.
    pub(super) fn new(state_dir: &std::path::Path) -> Self {
        let cancel = CancellationToken::new();
        super::signals::install(cancel.clone());
        Self {
            dead_letters: Arc::new(DeadLetters::new(&state_dir.join("dead-letters"))),
            cancel,
            stats: Arc::new(Stats::default()),
        }
    }
}

/// The transform stage in front of the sinks: each table's compiled stage
/// and the enrichment join.
#[derive(Default)]
pub(super) struct TableStages {
    /// Stages by table name (tables without one pass unchanged).
    pub tables: std::collections::HashMap<String, Stage>,
    /// The enrichment join, if configured.
    pub enrichment: Option<Arc<Enrichment>>,
}

impl TableStages {
    /// The stages of a pipeline's `[[tables]]` (validation checked them).
    pub(super) fn for_pipeline(
        config: &PipelineConfig,
        enrichment: Option<Arc<Enrichment>>,
    ) -> Result<Self, EngineError> {
        let tables = config
            .tables
            .iter()
            .map(|t| (t.name.as_str(), compile(&t.name, &t.filters, &t.transforms)));
        Self::collect(tables, enrichment)
    }

    /// The stages of a loader's tables: the loader-wide transforms, then
    /// each table's own.
    pub(super) fn for_loader(
        config: &LoaderConfig,
        enrichment: Option<Arc<Enrichment>>,
    ) -> Result<Self, EngineError> {
        let tables = config.tables.iter().map(|t| {
            let transforms = [config.transforms.as_slice(), &t.transforms].concat();
            (t.name.as_str(), compile(&t.name, &t.filters, &transforms))
        });
        Self::collect(tables, enrichment)
    }

    fn collect<'a>(
        tables: impl Iterator<Item = (&'a str, Result<Stage, EngineError>)>,
        enrichment: Option<Arc<Enrichment>>,
    ) -> Result<Self, EngineError> {
        let mut stages = std::collections::HashMap::new();
        for (name, stage) in tables {
            stages.insert(name.to_owned(), stage?);
        }
        Ok(Self {
            tables: stages,
            enrichment,
        })
    }
}

fn compile(
    table: &str,
    filters: &[FilterSpec],
    transforms: &[TransformConfig],
) -> Result<Stage, EngineError> {
    Stage::compile(filters, transforms).map_err(|err| {
        EngineError::Config(format!("table {table}: {}: {}", err.field(), err.problem()))
    })
}

/// Each sink's compiled route (validation checked them), in order.
pub(super) fn sink_routes(sinks: &[SinkEntry]) -> Result<Vec<SinkRoute>, EngineError> {
    sinks
        .iter()
        .map(|entry| {
            entry.route().map_err(|err| {
                let name = entry.name();
                EngineError::Config(format!("sink {name}: {}: {}", err.field(), err.problem()))
            })
        })
        .collect()
}

/// Connects every sink (failing on the first that cannot start), runs each
/// in a task, and puts the transform stage in front of them.
pub(super) async fn spawn_sinks(
    sinks: &[SinkEntry],
    schemas: &[TableSchema],
    aws: &AwsConfig,
    shared: &SinkShared,
    stages: TableStages,
) -> Result<(SinkSenders, SinkTasks), EngineError> {
    let mut tasks: SinkTasks = JoinSet::new();
    let mut senders = Vec::new();
    let routes = sink_routes(sinks)?;
    for (entry, route) in sinks.iter().zip(&routes) {
        let name = entry.name();
        // A sink prepares (creates tables or indices for) only the tables routed to it.
        let routed: Vec<TableSchema> = schemas
            .iter()
            .filter(|schema| {
                route
                    .tables
                    .as_ref()
                    .is_none_or(|t| t.contains(&*schema.name))
            })
            .cloned()
            .collect();
        let sink = &entry.sink;
        let (tx, rx) = mpsc::channel(SINK_QUEUE);
        let ctx = SinkContext {
            name: name.clone(),
            batch: sink.batch().clone(),
            dead_letters: Arc::clone(&shared.dead_letters),
            cancel: shared.cancel.clone(),
            stats: Arc::clone(&shared.stats),
        };
        let env = SinkEnv {
            name: &name,
            tables: &routed,
            aws,
        };
        let task = sink.start(env, rx, ctx).await?;
        let task_name = name.clone();
        tasks.spawn(async move { (task_name, task.await) });
        senders.push((name, tx));
    }
    let stats = Arc::clone(&shared.stats);
    let routes = Routes::new(stages.tables, stages.enrichment, routes).with_outputs(
        Arc::clone(&shared.dead_letters),
        Arc::new(move |count| stats.record_filtered(count)),
    );
    Ok((Arc::new(Fanout::new(senders, routes)), tasks))
}

/// Records a finished sink task's failure, if it failed.
pub(super) fn collect_sink_result(
    result: Result<(String, Result<(), SinkError>), tokio::task::JoinError>,
    errors: &mut Vec<EngineError>,
) {
    match result {
        Ok((_, Ok(()))) => {}
        Ok((_, Err(err))) => errors.push(err.into()),
        Err(join) => errors.push(EngineError::Internal(format!("sink task failed: {join}"))),
    }
}

/// The root cause among several errors: a sink's own failure explains a
/// reader's "sink stopped".
pub(super) fn pick_error(errors: Vec<EngineError>) -> Option<EngineError> {
    let sink_index = errors
        .iter()
        .position(|e| matches!(e, EngineError::Sink(_)));
    match sink_index {
        Some(index) => errors.into_iter().nth(index),
        None => errors.into_iter().next(),
    }
}
