//! What every pipeline (`run`, `replay`, `load`) is built on, in one place:
//! the state directory, the signal handler, the counters and dead letters,
//! the acknowledgement tracker, the metrics endpoint and probes, the sinks
//! behind their stages, start-up raced against a signal, and the draining
//! of the sinks at the end. A feature every pipeline needs is added here.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::{CancellationToken, DropGuard};

use super::sinks::{
    join_sinks, pick_error, spawn_sinks, SinkSenders, SinkShared, SinkTasks, TableStages,
};
use super::EngineError;
use crate::config::{AwsConfig, MetricsConfig, SinkEntry};
use crate::coordinator::AckTracker;
use crate::model::TableSchema;

/// A pipeline's shared parts, from before start-up until its sinks drain.
pub(super) struct Pipeline {
    /// Counters, dead letters and the cancel token SIGINT/SIGTERM trip.
    pub shared: SinkShared,
    /// What the sinks have acknowledged.
    pub tracker: Arc<AckTracker>,
    /// Stops the metrics endpoint when the pipeline is dropped.
    _endpoint: DropGuard,
}

impl Pipeline {
    /// Creates `state_dir`, installs the signal handler and, when
    /// `metrics` listens, serves the metrics endpoint and the probes from
    /// now on (`/readyz` says what start-up waits for until
    /// [`Pipeline::started`]).
    pub async fn open(
        state_dir: &Path,
        metrics: Option<&MetricsConfig>,
    ) -> Result<Self, EngineError> {
        super::create_state_dir(state_dir)?;
        let shared = SinkShared::new(state_dir);
        let tracker = AckTracker::new();
        let endpoint_stop = CancellationToken::new();
        if let Some(addr) = metrics.and_then(|m| m.listen) {
            let stats = Arc::clone(&shared.stats);
            super::metrics_server::start(addr, stats, Arc::clone(&tracker), endpoint_stop.clone())
                .await?;
        }
        Ok(Self {
            shared,
            tracker,
            _endpoint: endpoint_stop.drop_guard(),
        })
    }

    /// The token SIGINT/SIGTERM (or a failure) cancels.
    pub fn cancel(&self) -> &CancellationToken {
        &self.shared.cancel
    }

    /// Runs the start-up steps unless a signal comes first: `None` then
    /// (the caller stops cleanly, having read nothing).
    pub async fn start_up<T>(
        &self,
        steps: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<Option<T>, EngineError> {
        tokio::select! {
            biased;
            () = self.shared.cancel.cancelled() => {
                tracing::info!("stopped during start-up: nothing was read");
                Ok(None)
            }
            started = steps => started.map(Some),
        }
    }

    /// Starts the configured sinks, each behind `stages`, for `schemas`.
    pub async fn spawn_sinks(
        &self,
        sinks: &[SinkEntry],
        schemas: &[TableSchema],
        aws: &AwsConfig,
        stages: TableStages,
    ) -> Result<(SinkSenders, SinkTasks), EngineError> {
        spawn_sinks(sinks, schemas, aws, &self.shared, stages).await
    }

    /// Start-up is done: `/readyz` answers from the sinks and sources now.
    pub fn started(&self) {
        self.shared.stats.probes.health.mark_started();
    }

    /// Waits for every sink to drain and stop (their senders dropped),
    /// adding their failures to `errors`; returns the one to report.
    pub async fn drain_sinks(
        &self,
        mut sink_tasks: SinkTasks,
        mut errors: Vec<EngineError>,
    ) -> Option<EngineError> {
        join_sinks(&mut sink_tasks, &mut errors).await;
        pick_error(errors)
    }
}
