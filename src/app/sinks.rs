//! Builds and starts the configured sinks, each behind its own channel and task.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::EngineError;
use crate::config::{AwsConfig, SinkConfig};
use crate::dead_letter::DeadLetters;
use crate::model::TableSchema;
use crate::sink::{SinkContext, SinkEnv, SinkError};
use crate::stats::Stats;

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

/// Connects every sink (failing on the first that cannot start) and runs each in a task.
pub(super) async fn spawn_sinks(
    sinks: &[SinkConfig],
    schemas: &[TableSchema],
    aws: &AwsConfig,
    shared: &SinkShared,
) -> Result<(SinkSenders, SinkTasks), EngineError> {
    let mut tasks: SinkTasks = JoinSet::new();
    let mut senders = Vec::new();
    for sink in sinks {
        let name = sink.name();
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
            tables: schemas,
            aws,
        };
        let task = sink.start(env, rx, ctx).await?;
        let task_name = name.clone();
        tasks.spawn(async move { (task_name, task.await) });
        senders.push((name, tx));
    }
    Ok((senders.into(), tasks))
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
