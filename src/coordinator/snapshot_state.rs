//! Where snapshot state lives: a [`SnapshotState`] keeps a table's snapshot
//! (phase, version, recorded stream positions, each Scan segment's
//! progress) and hands out the segments this process scans.
//!
//! [`EmbeddedSnapshots`] keeps it in the SQLite store in `state_dir`, and
//! one process scans every segment. With a lease table, the state lives in
//! the table instead, any worker resumes a snapshot, and segments are
//! leases that workers share (`lease::snapshots`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::ownership::OwnershipError;
use super::snapshot_store::{SegmentProgress, SnapshotRecord};
use super::store::{CheckpointStore, ShardCheckpoint, StoreError};
use crate::future::BoxFuture;
use crate::model::SequenceNumber;

/// What deciding a table's snapshot rests on.
#[derive(Debug, Default)]
pub struct GateState {
    /// The followed stream's checkpoints, by shard id.
    pub checkpoints: HashMap<String, ShardCheckpoint>,
    /// Every stream of the table with checkpoints (the followed one too).
    pub streams: Vec<String>,
    /// The stored snapshot, if any.
    pub record: Option<SnapshotRecord>,
}

/// What starting a snapshot records.
#[derive(Debug, Clone)]
pub struct SnapshotBegin {
    /// Source table.
    pub table: String,
    /// The stream followed after the snapshot.
    pub stream: String,
    /// Version of the snapshot rows.
    pub version: SequenceNumber,
    /// Parallel Scan segments.
    pub total_segments: u32,
    /// Drop the table's checkpoints first (they point at lost changes).
    pub clear_checkpoints: bool,
    /// Shards closed when the snapshot started: recorded as finished.
    pub closed_shards: Vec<String>,
}

/// A segment this process scans until `stop` is cancelled (its lease was
/// lost) or it is done.
#[derive(Debug)]
pub struct ClaimedSegment {
    /// Where the segment stands.
    pub progress: SegmentProgress,
    /// Cancelled when this process must stop scanning the segment.
    pub stop: CancellationToken,
}

/// One look at a running snapshot.
#[derive(Debug, Default)]
pub struct SegmentsView {
    /// Segments this process now scans (never handed out twice while held).
    pub claimed: Vec<ClaimedSegment>,
    /// Every segment is scanned and acknowledged.
    pub all_done: bool,
    /// Another process finished the snapshot (its sweep included).
    pub finished_elsewhere: bool,
}

/// Keeps snapshot state and decides which segments this process scans.
pub trait SnapshotState: Send + Sync {
    /// The checkpoints of `stream`, the table's streams and its snapshot.
    fn gate_state<'a>(
        &'a self,
        table: &'a str,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<GateState, OwnershipError>>;

    /// The stored snapshot of `table`, if any.
    fn record<'a>(
        &'a self,
        table: &'a str,
    ) -> BoxFuture<'a, Result<Option<SnapshotRecord>, OwnershipError>>;

    /// The highest sequence number `table` ever reached (checkpoints,
    /// recorded positions, and what resets kept).
    fn highest_sequence<'a>(
        &'a self,
        table: &'a str,
    ) -> BoxFuture<'a, Result<Option<SequenceNumber>, OwnershipError>>;

    /// Begins a snapshot. False when another process began one since this
    /// one read the state (it then resumes that one instead).
    fn begin(&self, start: SnapshotBegin) -> BoxFuture<'_, Result<bool, OwnershipError>>;

    /// After the stream positions are being watched: lets segments be
    /// scanned. False when this process was too slow and another one took
    /// over the start; its watchers must then record nothing.
    fn go<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<bool, OwnershipError>>;

    /// Records that reading `shard` starts at `sequence` (inclusive).
    fn record_start<'a>(
        &'a self,
        table: &'a str,
        stream: &'a str,
        shard: &'a str,
        sequence: &'a SequenceNumber,
    ) -> BoxFuture<'a, Result<(), OwnershipError>>;

    /// How often [`SnapshotState::maintain`] runs while a snapshot is scanned.
    fn poll_interval(&self) -> Duration;

    /// Keeps this process's segments (renewing their leases with their
    /// progress) and claims segments to scan.
    fn maintain<'a>(
        &'a self,
        table: &'a str,
    ) -> BoxFuture<'a, Result<SegmentsView, OwnershipError>>;

    /// Stores a segment's acknowledged progress (with leases: only while
    /// this process holds the segment; a finished segment at once).
    fn save_segment<'a>(
        &'a self,
        table: &'a str,
        progress: SegmentProgress,
    ) -> BoxFuture<'a, Result<(), OwnershipError>>;

    /// Marks the snapshot finished (after the sweep).
    fn finish<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<(), OwnershipError>>;

    /// Records that `table` must be snapshotted before it streams again.
    fn request<'a>(
        &'a self,
        table: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), OwnershipError>>;

    /// At shutdown: stores the segments' pending progress and gives them up.
    fn release<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<(), OwnershipError>>;
}

/// Snapshot state in the embedded SQLite store; this process scans every
/// segment.
pub struct EmbeddedSnapshots {
    store: Arc<Mutex<CheckpointStore>>,
    /// Tables whose unfinished segments were handed out already.
    handed_out: Mutex<Vec<String>>,
}

impl EmbeddedSnapshots {
    /// Snapshot state in `store`.
    pub fn new(store: Arc<Mutex<CheckpointStore>>) -> Self {
        Self {
            store,
            handed_out: Mutex::new(Vec::new()),
        }
    }

    fn with_store<'a, T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut CheckpointStore) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<'a, Result<T, OwnershipError>> {
        let store = Arc::clone(&self.store);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                f(&mut store.lock().unwrap_or_else(PoisonError::into_inner))
            })
            .await?
            .map_err(OwnershipError::from)
        })
    }
}

impl SnapshotState for EmbeddedSnapshots {
    fn gate_state<'a>(
        &'a self,
        table: &'a str,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<GateState, OwnershipError>> {
        let (table, stream) = (table.to_owned(), stream.to_owned());
        self.with_store(move |store| {
            Ok(GateState {
                checkpoints: store.load(&stream)?,
                streams: store.streams_of(&table)?,
                record: store.snapshot(&table)?,
            })
        })
    }

    fn record<'a>(
        &'a self,
        table: &'a str,
    ) -> BoxFuture<'a, Result<Option<SnapshotRecord>, OwnershipError>> {
        let table = table.to_owned();
        self.with_store(move |store| store.snapshot(&table))
    }

    fn highest_sequence<'a>(
        &'a self,
        table: &'a str,
    ) -> BoxFuture<'a, Result<Option<SequenceNumber>, OwnershipError>> {
        let table = table.to_owned();
        self.with_store(move |store| store.highest_sequence(&table))
    }

    fn begin(&self, start: SnapshotBegin) -> BoxFuture<'_, Result<bool, OwnershipError>> {
        self.handed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|t| *t != start.table);
        self.with_store(move |store| {
            store.begin_snapshot(&super::SnapshotStart {
                table: &start.table,
                stream_arn: &start.stream,
                version: &start.version,
                total_segments: start.total_segments,
                clear_checkpoints: start.clear_checkpoints,
                closed_shards: &start.closed_shards,
            })?;
            Ok(true)
        })
    }

    fn go<'a>(&'a self, _table: &'a str) -> BoxFuture<'a, Result<bool, OwnershipError>> {
        Box::pin(std::future::ready(Ok(true)))
    }

    fn record_start<'a>(
        &'a self,
        table: &'a str,
        stream: &'a str,
        shard: &'a str,
        sequence: &'a SequenceNumber,
    ) -> BoxFuture<'a, Result<(), OwnershipError>> {
        let (table, stream, shard, sequence) = (
            table.to_owned(),
            stream.to_owned(),
            shard.to_owned(),
            sequence.clone(),
        );
        self.with_store(move |store| store.set_start_at(&table, &stream, &shard, &sequence))
    }

    fn poll_interval(&self) -> Duration {
        // Every segment is handed out at the first look and the runner looks
        // again as soon as they are done: periodic looks find nothing new.
        Duration::from_secs(5)
    }

    fn maintain<'a>(
        &'a self,
        table: &'a str,
    ) -> BoxFuture<'a, Result<SegmentsView, OwnershipError>> {
        let first = {
            let mut handed_out = self
                .handed_out
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let first = !handed_out.iter().any(|t| t == table);
            if first {
                handed_out.push(table.to_owned());
            }
            first
        };
        let name = table.to_owned();
        self.with_store(move |store| {
            let record = store.snapshot(&name)?;
            let segments = record.map(|r| r.segments).unwrap_or_default();
            let all_done = segments.iter().all(|s| s.done);
            let claimed = if first {
                segments
                    .into_iter()
                    .filter(|s| !s.done)
                    .map(|progress| ClaimedSegment {
                        progress,
                        stop: CancellationToken::new(),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            Ok(SegmentsView {
                claimed,
                all_done,
                finished_elsewhere: false,
            })
        })
    }

    fn save_segment<'a>(
        &'a self,
        table: &'a str,
        progress: SegmentProgress,
    ) -> BoxFuture<'a, Result<(), OwnershipError>> {
        let table = table.to_owned();
        self.with_store(move |store| store.save_segment(&table, &progress))
    }

    fn finish<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<(), OwnershipError>> {
        let table = table.to_owned();
        self.with_store(move |store| store.finish_snapshot(&table))
    }

    fn request<'a>(
        &'a self,
        table: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), OwnershipError>> {
        let (table, reason) = (table.to_owned(), reason.to_owned());
        self.with_store(move |store| store.request_snapshot(&table, &reason))
    }

    fn release<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<(), OwnershipError>> {
        self.handed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|t| t != table);
        Box::pin(std::future::ready(Ok(())))
    }
}
