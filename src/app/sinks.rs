//! Builds and starts the configured sinks, each behind its own channel and task.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::dimension::{start_dimensions, Dimensions};
use super::EngineError;
use crate::config::{AwsConfig, LoaderConfig, PipelineConfig, SinkEntry};
use crate::coordinator::Fanout;
use crate::dead_letter::DeadLetters;
use crate::model::TableSchema;
use crate::sink::{SinkContext, SinkEnv, SinkError};
use crate::stats::Stats;
use crate::transform::{
    EnrichConfig, FilterSpec, Join, JoinConfig, Routes, SinkRoute, Stage, TransformConfig,
};

/// Chunks buffered per sink before producers wait (backpressure).
const SINK_QUEUE: usize = 8;

/// Running sink tasks, each ending with its name and result.
pub(super) type SinkTasks = JoinSet<(String, Result<(), SinkError>)>;

/// The channels into the sinks, with the sinks' names.
pub(super) use crate::coordinator::SinkSenders;

/// What every sink task shares (a clone shares the same counters, dead
/// letters and cancel token).
#[derive(Clone)]
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
/// and its enrichment joins.
#[derive(Default)]
pub(super) struct TableStages {
    /// Stages by table name (tables without one pass unchanged).
    pub tables: HashMap<String, Stage>,
    /// Enrichment joins by table name, in order.
    pub joins: HashMap<String, Vec<Arc<Join>>>,
}

impl TableStages {
    /// Loads a pipeline's dimension tables and compiles its tables'
    /// stages and joins; the dimensions stay fresh while the returned
    /// handle lives.
    pub(super) async fn start_pipeline(
        config: &PipelineConfig,
    ) -> Result<(Self, Dimensions), EngineError> {
        let dimensions = start_dimensions(
            &config.dimensions,
            config.enrich.as_ref(),
            &config.state_dir,
            &config.aws,
        )
        .await?;
        Ok((Self::for_pipeline(config, &dimensions)?, dimensions))
    }

    /// [`TableStages::start_pipeline`] for a loader.
    pub(super) async fn start_loader(
        config: &LoaderConfig,
    ) -> Result<(Self, Dimensions), EngineError> {
        let dimensions = start_dimensions(
            &config.dimensions,
            config.enrich.as_ref(),
            &config.state_dir,
            &config.aws,
        )
        .await?;
        Ok((Self::for_loader(config, &dimensions)?, dimensions))
    }

    /// The stages and joins of a pipeline's `[[tables]]` (validation checked them).
    fn for_pipeline(config: &PipelineConfig, dimensions: &Dimensions) -> Result<Self, EngineError> {
        let mut stages = Self::default();
        for table in &config.tables {
            let stage = compile(&table.name, &table.filters, &table.transforms)?;
            stages.add(
                &table.name,
                stage,
                config.enrich.as_ref(),
                &table.enrich,
                dimensions,
            )?;
        }
        Ok(stages)
    }

    /// The stages of a loader's tables (the loader-wide transforms, then
    /// each table's own) and their joins.
    fn for_loader(config: &LoaderConfig, dimensions: &Dimensions) -> Result<Self, EngineError> {
        let mut stages = Self::default();
        for table in &config.tables {
            let transforms = [config.transforms.as_slice(), &table.transforms].concat();
            let stage = compile(&table.name, &table.filters, &transforms)?;
            stages.add(
                &table.name,
                stage,
                config.enrich.as_ref(),
                &table.enrich,
                dimensions,
            )?;
        }
        Ok(stages)
    }

    /// Adds a table's stage and its joins: the `[enrich]` join first, then its own.
    fn add(
        &mut self,
        table: &str,
        stage: Stage,
        enrich: Option<&EnrichConfig>,
        joins: &[JoinConfig],
        dimensions: &Dimensions,
    ) -> Result<(), EngineError> {
        let global = enrich.map(EnrichConfig::join);
        let mut compiled = Vec::new();
        for (index, config) in global.iter().chain(joins).enumerate() {
            let place = match global {
                Some(_) if index == 0 => "enrich".to_owned(),
                Some(_) => format!("table {table}: enrich[{}]", index - 1),
                None => format!("table {table}: enrich[{index}]"),
            };
            let dimension = dimensions.get(&config.dimension).ok_or_else(|| {
                EngineError::Config(format!("{place}: no dimension {:?}", config.dimension))
            })?;
            let join = Join::new(dimension, config)
                .map_err(|problem| EngineError::Config(format!("{place}: {problem}")))?;
            compiled.push(Arc::new(join));
        }
        self.tables.insert(table.to_owned(), stage);
        if !compiled.is_empty() {
            self.joins.insert(table.to_owned(), compiled);
        }
        Ok(())
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
        shared
            .stats
            .probes
            .health
            .starting(format!("connecting sink {name}"));
        let task = sink.start(env, rx, ctx).await?;
        let task_name = name.clone();
        tasks.spawn(async move { (task_name, task.await) });
        senders.push((name, tx));
    }
    let stats = Arc::clone(&shared.stats);
    let routes = Routes::new(stages.tables, stages.joins, routes).with_outputs(
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
        Err(source) => errors.push(EngineError::Task {
            task: "sink task",
            source,
        }),
    }
}

/// The root cause among several errors: a sink's own failure explains a
/// reader's "sink stopped".
/// Waits for every sink task to end (they drain what they hold once
/// their senders are gone), collecting their failures into `errors`.
pub(super) async fn join_sinks(tasks: &mut SinkTasks, errors: &mut Vec<EngineError>) {
    while let Some(result) = tasks.join_next().await {
        collect_sink_result(result, errors);
    }
}

pub(super) fn pick_error(errors: Vec<EngineError>) -> Option<EngineError> {
    let sink_index = errors
        .iter()
        .position(|e| matches!(e, EngineError::Sink(_)));
    match sink_index {
        Some(index) => errors.into_iter().nth(index),
        None => errors.into_iter().next(),
    }
}
