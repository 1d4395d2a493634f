//! The checkpoint writer: persists what the ack tracker reports, soon after
//! it changes, and once more at shutdown.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::coordinator::{AckTracker, CheckpointStore, StoreError};

/// At most this often, so that a busy pipeline writes checkpoints in groups.
const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// Writes checkpoints until `stop` is cancelled, then writes the last ones.
pub(super) async fn run_checkpointer(
    tracker: Arc<AckTracker>,
    store: Arc<Mutex<CheckpointStore>>,
    stop: CancellationToken,
) -> Result<(), StoreError> {
    loop {
        let stopping = tokio::select! {
            () = tracker.changed() => false,
            () = tokio::time::sleep(Duration::from_secs(1)) => false,
            () = stop.cancelled() => true,
        };
        flush(&tracker, &store).await?;
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
pub(super) async fn flush(
    tracker: &AckTracker,
    store: &Arc<Mutex<CheckpointStore>>,
) -> Result<(), StoreError> {
    let updates = tracker.take_updates();
    if updates.is_empty() {
        return Ok(());
    }
    let store = Arc::clone(store);
    let count = updates.len();
    let result = tokio::task::spawn_blocking(move || {
        store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .save(&updates)
    })
    .await;
    match result {
        Ok(saved) => saved?,
        Err(join) => {
            tracing::error!("checkpoint writer thread failed: {join}");
        }
    }
    tracing::debug!(shards = count, "checkpoints written");
    Ok(())
}
