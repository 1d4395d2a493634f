//! Shared ordered-ack state of every shard being read: readers register
//! chunks, sinks acknowledge them, the checkpoint writer takes what advanced.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::frontier::{FrontierError, ShardFrontier};
use crate::model::SequenceNumber;

/// Identifies a shard across streams.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShardKey {
    /// Stream ARN.
    pub stream: Arc<str>,
    /// Shard id.
    pub shard: Arc<str>,
}

/// A checkpoint to persist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointUpdate {
    /// The shard.
    pub key: ShardKey,
    /// Its source table.
    pub table: Arc<str>,
    /// The new checkpoint (`None`: unchanged, e.g. a shard finished without records).
    pub sequence: Option<SequenceNumber>,
    /// The shard is read to its end and fully acknowledged.
    pub finished: bool,
}

struct Entry {
    /// Which opening of the shard this is: a shard closed (lost lease) and
    /// opened again (lease regained) must not take the old chunks' acks.
    generation: u64,
    table: Arc<str>,
    frontier: ShardFrontier,
    dirty: bool,
    finished_reported: bool,
    /// When the checkpoint last moved (or the shard was opened).
    moved_at: Instant,
}

/// Where one shard stands, for lag.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardProgress {
    /// Creation time of the oldest change not yet acknowledged by every sink.
    pub oldest_unacked_ms: Option<i64>,
    /// Time since the checkpoint last moved (or the shard was opened).
    pub checkpoint_age: Duration,
}

/// Frontiers of all shards being read, behind one lock taken once per chunk
/// (never per record).
#[derive(Default)]
pub struct AckTracker {
    shards: Mutex<HashMap<ShardKey, Entry>>,
    generations: std::sync::atomic::AtomicU64,
    changed: Notify,
}

impl AckTracker {
    /// An empty tracker.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ShardKey, Entry>> {
        self.shards.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts tracking a shard that resumes after `checkpoint`.
    pub fn open_shard(&self, key: ShardKey, table: Arc<str>, checkpoint: Option<SequenceNumber>) {
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock().insert(
            key,
            Entry {
                generation,
                table,
                frontier: ShardFrontier::new(checkpoint),
                dirty: false,
                finished_reported: false,
                moved_at: Instant::now(),
            },
        );
    }

    /// Registers a chunk of `key` ending at `last`, whose oldest change was
    /// made at `oldest_ms`, that `acks_needed` sinks will acknowledge, and
    /// returns the handle each sink acknowledges through.
    pub fn register(
        self: &Arc<Self>,
        key: &ShardKey,
        last: SequenceNumber,
        acks_needed: usize,
        oldest_ms: Option<i64>,
    ) -> Result<AckHandle, FrontierError> {
        let mut shards = self.lock();
        let entry = shards
            .get_mut(key)
            .ok_or(FrontierError::UnknownChunk(u64::MAX))?;
        let (id, advanced) = entry
            .frontier
            .register(last.clone(), acks_needed, oldest_ms)?;
        if advanced {
            entry.dirty = true;
            entry.moved_at = Instant::now();
            self.changed.notify_one();
        }
        Ok(AckHandle {
            tracker: Arc::clone(self),
            key: key.clone(),
            generation: entry.generation,
            id,
            last,
        })
    }

    fn is_open(&self, key: &ShardKey, generation: u64) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|e| e.generation == generation)
    }

    fn ack(&self, key: &ShardKey, generation: u64, id: u64) -> Result<(), FrontierError> {
        let mut shards = self.lock();
        let Some(entry) = shards.get_mut(key).filter(|e| e.generation == generation) else {
            // The shard was closed (its lease lost) after the chunk was
            // sent: nothing of it will be checkpointed by this process.
            return Ok(());
        };
        if entry.frontier.ack(id)? {
            entry.dirty = true;
            entry.moved_at = Instant::now();
            self.changed.notify_one();
        }
        Ok(())
    }

    /// Forgets a shard this process no longer owns: its unacknowledged
    /// chunks are never checkpointed (late acknowledgements are refused),
    /// and a checkpoint not yet taken is dropped.
    pub fn close_shard(&self, key: &ShardKey) {
        self.lock().remove(key);
    }

    /// Marks a shard as read to its end; it is reported finished once fully acknowledged.
    pub fn mark_drained(&self, key: &ShardKey) {
        if let Some(entry) = self.lock().get_mut(key) {
            entry.frontier.mark_drained();
            entry.dirty = true;
            self.changed.notify_one();
        }
    }

    /// Takes the checkpoints that changed since the last call. Finished
    /// shards are reported once and then forgotten.
    pub fn take_updates(&self) -> Vec<CheckpointUpdate> {
        let mut shards = self.lock();
        let mut updates = Vec::new();
        shards.retain(|key, entry| {
            if !entry.dirty {
                return true;
            }
            entry.dirty = false;
            let finished = entry.frontier.is_finished();
            if finished && entry.finished_reported {
                return false;
            }
            entry.finished_reported = finished;
            updates.push(CheckpointUpdate {
                key: key.clone(),
                table: Arc::clone(&entry.table),
                sequence: entry.frontier.checkpoint().cloned(),
                finished,
            });
            !finished
        });
        updates
    }

    /// Chunks registered but not yet acknowledged by every sink, over all shards.
    pub fn in_flight(&self) -> usize {
        self.lock().values().map(|e| e.frontier.in_flight()).sum()
    }

    /// Every open shard's progress, for lag.
    pub fn progress(&self) -> HashMap<ShardKey, ShardProgress> {
        self.lock()
            .iter()
            .map(|(key, entry)| {
                let progress = ShardProgress {
                    oldest_unacked_ms: entry.frontier.oldest_unacked_ms(),
                    checkpoint_age: entry.moved_at.elapsed(),
                };
                (key.clone(), progress)
            })
            .collect()
    }

    /// True when some checkpoint changed and was not taken yet.
    pub fn has_updates(&self) -> bool {
        self.lock().values().any(|e| e.dirty)
    }

    /// Waits until a checkpoint may have changed.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// A sink's means to acknowledge one chunk. Acknowledge only once the chunk's
/// records are durable in the sink.
#[derive(Clone)]
pub struct AckHandle {
    tracker: Arc<AckTracker>,
    key: ShardKey,
    generation: u64,
    id: u64,
    last: SequenceNumber,
}

impl AckHandle {
    /// Acknowledges the chunk for one sink. A chunk of a shard closed
    /// since (a lost lease) is acknowledged into the void: `Ok`, ignored.
    pub fn ack(&self) -> Result<(), FrontierError> {
        self.tracker.ack(&self.key, self.generation, self.id)
    }

    /// The shard the chunk came from.
    pub fn shard(&self) -> &ShardKey {
        &self.key
    }

    /// The position the chunk ends at within its shard: what the shard's
    /// checkpoint becomes once the chunk is acknowledged (a stream record's
    /// sequence number; a snapshot segment's page number).
    pub fn position(&self) -> &SequenceNumber {
        &self.last
    }

    /// False once the opening of the shard this chunk belongs to ended (its
    /// lease was lost): nothing of it will be checkpointed by this process,
    /// so a sink need not write it.
    pub fn is_open(&self) -> bool {
        self.tracker.is_open(&self.key, self.generation)
    }
}

impl std::fmt::Debug for AckHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AckHandle({}/{}#{})",
            self.key.stream, self.key.shard, self.id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(n: u64) -> SequenceNumber {
        SequenceNumber::parse(&n.to_string()).unwrap()
    }

    #[test]
    fn a_closed_shard_is_never_checkpointed_past_what_was_taken() {
        let tracker = AckTracker::new();
        let key = ShardKey {
            stream: Arc::from("s"),
            shard: Arc::from("a"),
        };
        tracker.open_shard(key.clone(), Arc::from("t"), None);
        let first = tracker.register(&key, seq(10), 1, None).unwrap();
        first.ack().unwrap();
        assert_eq!(tracker.take_updates()[0].sequence, Some(seq(10)));
        let second = tracker.register(&key, seq(20), 1, None).unwrap();
        // The lease is lost before the sink acknowledges the second chunk.
        tracker.close_shard(&key);
        second
            .ack()
            .expect("a late acknowledgement is ignored, not an error");
        assert!(tracker.take_updates().is_empty());
        assert_eq!(tracker.in_flight(), 0);
        // The lease comes back: the old chunk's acknowledgement does not
        // count for the new opening's chunks.
        tracker.open_shard(key.clone(), Arc::from("t"), Some(seq(10)));
        let again = tracker.register(&key, seq(20), 1, None).unwrap();
        second.ack().expect("ignored");
        assert_eq!(tracker.in_flight(), 1);
        again.ack().unwrap();
        assert_eq!(tracker.take_updates()[0].sequence, Some(seq(20)));
    }

    #[test]
    fn a_handle_knows_its_position_and_whether_its_opening_lives() {
        let tracker = AckTracker::new();
        let key = ShardKey {
            stream: Arc::from("s"),
            shard: Arc::from("a"),
        };
        tracker.open_shard(key.clone(), Arc::from("t"), None);
        let first = tracker.register(&key, seq(10), 1, None).unwrap();
        assert_eq!(first.position(), &seq(10));
        assert!(first.is_open());
        tracker.close_shard(&key);
        assert!(!first.is_open());
        // A new opening is not the old chunk's.
        tracker.open_shard(key.clone(), Arc::from("t"), None);
        let again = tracker.register(&key, seq(20), 1, None).unwrap();
        assert!(!first.is_open());
        assert!(again.is_open());
    }
}
