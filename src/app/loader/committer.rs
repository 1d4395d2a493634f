//! Deletes SQS messages once every change of their object is acknowledged
//! by every sink, and stops extending their visibility.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::coordinator::AckTracker;

/// A message whose object is being loaded.
pub struct Pending {
    /// Receipt handle, to delete the message.
    pub receipt: String,
    /// The object's key, for the log.
    pub key: String,
    /// Stops the visibility extender.
    pub extender: CancellationToken,
}

/// Messages in flight (by message id) and how many were deleted.
#[derive(Default)]
pub struct CommitState {
    pending: Mutex<HashMap<String, Pending>>,
    deleted: AtomicU64,
}

/// Shared commit state.
pub type InFlight = Arc<CommitState>;

impl CommitState {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a message being loaded.
    pub fn add(&self, message_id: String, pending: Pending) {
        self.lock().insert(message_id, pending);
    }

    /// Messages not yet deleted.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Messages deleted after a complete load.
    pub fn deleted(&self) -> u64 {
        self.deleted.load(Ordering::Relaxed)
    }
}

/// Deletes completed messages until `stop`, then once more.
pub async fn run(
    tracker: Arc<AckTracker>,
    state: InFlight,
    sqs: aws_sdk_sqs::Client,
    queue: String,
    stop: CancellationToken,
) {
    loop {
        let stopping = tokio::select! {
            () = tracker.changed() => false,
            () = tokio::time::sleep(Duration::from_millis(500)) => false,
            () = stop.cancelled() => true,
        };
        flush(&tracker, &state, &sqs, &queue).await;
        if stopping {
            return;
        }
    }
}

/// Deletes the messages whose objects are fully acknowledged.
pub async fn flush(
    tracker: &AckTracker,
    state: &CommitState,
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
) {
    for update in tracker.take_updates() {
        if !update.finished {
            continue;
        }
        let Some(pending) = state.lock().remove(&*update.key.shard) else {
            continue;
        };
        pending.extender.cancel();
        match sqs
            .delete_message()
            .queue_url(queue)
            .receipt_handle(&pending.receipt)
            .send()
            .await
        {
            Ok(_) => {
                state.deleted.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    message_id = %update.key.shard,
                    key = %pending.key,
                    "object loaded, message deleted"
                );
            }
            // The message comes back after its visibility timeout and is
            // loaded again: harmless for versioned sinks.
            Err(err) => tracing::warn!(
                message = %update.key.shard,
                "could not delete a loaded message (it will be loaded again): {}",
                crate::error_text::with_causes(&err)
            ),
        }
    }
}

/// Extends a message's visibility every half timeout until cancelled.
pub fn extend_visibility(
    sqs: aws_sdk_sqs::Client,
    queue: String,
    receipt: String,
    timeout: Duration,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let seconds = i32::try_from(timeout.as_secs()).unwrap_or(60);
        loop {
            tokio::select! {
                () = tokio::time::sleep(timeout / 2) => {}
                () = stop.cancelled() => return,
            }
            if let Err(err) = sqs
                .change_message_visibility()
                .queue_url(&queue)
                .receipt_handle(&receipt)
                .visibility_timeout(seconds)
                .send()
                .await
            {
                tracing::warn!(
                    "could not extend a message's visibility: {}",
                    crate::error_text::with_causes(&err)
                );
            }
        }
    });
}
