//! Shared ordered-ack state of every shard being read: readers register
//! chunks, sinks acknowledge them, the checkpoint writer takes what advanced.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
    table: Arc<str>,
    frontier: ShardFrontier,
    dirty: bool,
    finished_reported: bool,
}

/// Frontiers of all shards being read, behind one lock taken once per chunk
/// (never per record).
#[derive(Default)]
pub struct AckTracker {
    shards: Mutex<HashMap<ShardKey, Entry>>,
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
        self.lock().insert(
            key,
            Entry {
                table,
                frontier: ShardFrontier::new(checkpoint),
                dirty: false,
                finished_reported: false,
            },
        );
    }

    /// Registers a chunk of `key` ending at `last` that `acks_needed` sinks will
    /// acknowledge, and returns the handle each sink acknowledges through.
    pub fn register(
        self: &Arc<Self>,
        key: &ShardKey,
        last: SequenceNumber,
        acks_needed: usize,
    ) -> Result<AckHandle, FrontierError> {
        let mut shards = self.lock();
        let entry = shards
            .get_mut(key)
            .ok_or(FrontierError::UnknownChunk(u64::MAX))?;
        let (id, advanced) = entry.frontier.register(last, acks_needed)?;
        if advanced {
            entry.dirty = true;
            self.changed.notify_one();
        }
        Ok(AckHandle {
            tracker: Arc::clone(self),
            key: key.clone(),
            id,
        })
    }

    fn ack(&self, key: &ShardKey, id: u64) -> Result<(), FrontierError> {
        let mut shards = self.lock();
        let entry = shards.get_mut(key).ok_or(FrontierError::UnknownChunk(id))?;
        if entry.frontier.ack(id)? {
            entry.dirty = true;
            self.changed.notify_one();
        }
        Ok(())
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
pub struct AckHandle {
    tracker: Arc<AckTracker>,
    key: ShardKey,
    id: u64,
}

impl AckHandle {
    /// Acknowledges the chunk for one sink.
    pub fn ack(&self) -> Result<(), FrontierError> {
        self.tracker.ack(&self.key, self.id)
    }

    /// The shard the chunk came from.
    pub fn shard(&self) -> &ShardKey {
        &self.key
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
