//! Recording where the stream resumes after a snapshot, without a gap.
//!
//! Before the Scan starts, each open shard gets an iterator at LATEST; a
//! watcher polls it during the Scan, and the first record that arrives is
//! stored as the shard's start (`AT_SEQUENCE_NUMBER`): every change made after
//! the snapshot began is at or after it. A shard that stays quiet keeps its
//! previous position (its checkpoint, or the trim horizon), which is earlier
//! and therefore also gap-free: replaying older changes before newer ones
//! converges, and snapshot rows are versioned below stream changes.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::coordinator::SnapshotState;
use crate::model::SequenceNumber;
use crate::source::shard::PositionProbe;
use crate::source::SourceError;

/// Watchers of a snapshot's open shards. They record nothing until armed
/// (once segments may be scanned), so a start another worker took over
/// records no position.
pub struct Watchers {
    tasks: JoinSet<()>,
    stop: CancellationToken,
    armed: CancellationToken,
}

/// Where one shard's watcher is.
struct Watch {
    probe: Arc<dyn PositionProbe>,
    state: Arc<dyn SnapshotState>,
    table: String,
    stream: String,
    shard: String,
    iterator: String,
    stop: CancellationToken,
    armed: CancellationToken,
}

impl Watchers {
    /// Opens a LATEST iterator on every shard of `open_shards` (before the
    /// Scan starts, which is what makes the recorded start gap-free) and
    /// starts polling them.
    pub async fn start(
        probe: &Arc<dyn PositionProbe>,
        state: &Arc<dyn SnapshotState>,
        table: &str,
        stream: &str,
        open_shards: &[String],
    ) -> Result<Self, SourceError> {
        let stop = CancellationToken::new();
        let armed = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for shard in open_shards {
            let Some(iterator) = probe.latest_iterator(shard).await? else {
                continue;
            };
            let watch = Watch {
                probe: Arc::clone(probe),
                state: Arc::clone(state),
                table: table.to_owned(),
                stream: stream.to_owned(),
                shard: shard.clone(),
                iterator,
                stop: stop.clone(),
                armed: armed.clone(),
            };
            tasks.spawn(watch.run());
        }
        Ok(Self { tasks, stop, armed })
    }

    /// Lets the watchers record the positions they find.
    pub fn arm(&self) {
        self.armed.cancel();
    }

    /// Stops the watchers and waits for them; a start found and stored
    /// before this returns is kept.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Watch {
    async fn run(mut self) {
        let mut idle = Duration::from_millis(250);
        loop {
            let page = tokio::select! {
                page = self.probe.first_record(&self.iterator) => page,
                () = self.stop.cancelled() => return,
            };
            let (first, next) = match page {
                Ok(found) => found,
                Err(err) => {
                    // The shard keeps its earlier (gap-free) position.
                    tracing::warn!(table = %self.table, shard = %self.shard,
                        "snapshot position watcher stopped; the shard will be read from its earlier position: {err}");
                    return;
                }
            };
            if let Some(first) = first {
                tokio::select! {
                    () = self.armed.cancelled() => self.record(&first).await,
                    () = self.stop.cancelled() => {}
                }
                return;
            }
            match next {
                Some(next) => self.iterator = next,
                // Closed without a record after the snapshot began: its
                // children start at their trim horizon, after the snapshot.
                None => return,
            }
            tokio::select! {
                () = tokio::time::sleep(idle) => {}
                () = self.stop.cancelled() => return,
            }
            idle = (idle * 2).min(Duration::from_secs(2));
        }
    }

    async fn record(&self, sequence: &SequenceNumber) {
        let saved = self
            .state
            .record_start(&self.table, &self.stream, &self.shard, sequence)
            .await;
        match saved {
            Ok(()) => tracing::debug!(table = %self.table, shard = %self.shard,
                sequence = %sequence, "stream position after the snapshot recorded"),
            Err(err) => tracing::warn!(table = %self.table, shard = %self.shard,
                "cannot store the stream position; the shard keeps its earlier position: {err}"),
        }
    }
}
