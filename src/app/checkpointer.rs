//! The checkpoint writer: persists what the ack tracker reports, soon after
//! it changes, and once more at shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::coordinator::{AckTracker, Ownership, OwnershipError};

/// At most this often, so that a busy pipeline writes checkpoints in groups.
const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// Writes checkpoints until `stop` is cancelled, then writes the last ones.
async fn run_checkpointer(
    tracker: Arc<AckTracker>,
    ownership: Arc<dyn Ownership>,
    stop: CancellationToken,
) -> Result<(), OwnershipError> {
    loop {
        let stopping = tokio::select! {
            () = tracker.changed() => false,
            () = tokio::time::sleep(Duration::from_secs(1)) => false,
            () = stop.cancelled() => true,
        };
        flush(&tracker, ownership.as_ref()).await?;
        if stopping {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(MIN_INTERVAL) => {}
            () = stop.cancelled() => {}
        }
    }
}

/// Persists every checkpoint that changed.
async fn flush(tracker: &AckTracker, ownership: &dyn Ownership) -> Result<(), OwnershipError> {
    let updates = tracker.take_updates();
    if updates.is_empty() {
        return Ok(());
    }
    let count = updates.len();
    ownership.save(updates).await?;
    tracing::debug!(shards = count, "checkpoints written");
    Ok(())
}

/// The running checkpoint writer of a run.
pub(super) struct Writer {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), OwnershipError>>,
}

impl Writer {
    /// Starts writing `tracker`'s checkpoints through `ownership`.
    pub(super) fn start(tracker: &Arc<AckTracker>, ownership: &Arc<dyn Ownership>) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run_checkpointer(
            Arc::clone(tracker),
            Arc::clone(ownership),
            stop.clone(),
        ));
        Self { stop, task }
    }

    /// After the sinks drained: stops the writer, then writes the last
    /// checkpoints (after a failure too), adding what went wrong to `errors`.
    pub(super) async fn finish(
        self,
        tracker: &AckTracker,
        ownership: &dyn Ownership,
        errors: &mut Vec<super::EngineError>,
    ) {
        self.stop.cancel();
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => errors.push(err.into()),
            Err(source) => errors.push(super::EngineError::Task {
                task: "checkpoint writer",
                source,
            }),
        }
        if let Err(err) = flush(tracker, ownership).await {
            errors.push(err.into());
        }
    }
}
