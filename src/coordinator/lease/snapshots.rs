//! Snapshot state in the lease table, shared by a fleet: any worker can
//! resume a snapshot, and its Scan segments are leases the workers share.
//!
//! - **Start.** One worker wins the conditional write that moves the
//!   table's snapshot item to `starting` (it owns the item meanwhile),
//!   records the closed shards, creates the segment items, opens its
//!   position watchers, then moves the item to `running`. Segments are
//!   scanned only once it is `running`, so every recorded position is
//!   gap-free. If the starter stops renewing for a lease duration, a
//!   waiting worker moves the item to `running` itself; the starter's
//!   watchers then record nothing (its move fails on the counter).
//! - **Segments.** Every renew period a worker renews its segments (their
//!   progress folded into the renewal) and takes unowned or expired ones
//!   up to its share of the unfinished segments among the live workers.
//!   Segments are never stolen: they end by themselves.
//! - **End.** When every segment is done, each worker still in the
//!   snapshot sweeps its sinks (idempotent) and the first to move the item
//!   to `done` finishes it; the others see `done` and stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::balance::{ExpiryWatch, LeaseView};
use super::owner::{checkpoint_of, lease_error, lease_key, LeaseOwnership};
use super::snapshot_items::{snapshot_key, SnapshotItem};
use super::snapshot_segments::{progress_of, HeldSegment};
use super::table::{
    Lease, LeaseTable, LeaseTableError, Written, HEARTBEAT_PREFIX, SNAPSHOT_PREFIX,
};
use crate::coordinator::ownership::OwnershipError;
use crate::coordinator::snapshot_state::{GateState, SegmentsView, SnapshotBegin, SnapshotState};
use crate::coordinator::{SegmentProgress, SnapshotPhase, SnapshotRecord};
use crate::future::BoxFuture;
use crate::model::SequenceNumber;

/// What this worker knows of one table's snapshot.
#[derive(Default)]
pub(super) struct TableSnapshot {
    /// The snapshot item's counter when last read.
    pub(super) seen: Option<u64>,
    /// The floor the item keeps (highest sequence before a reset).
    pub(super) floor: Option<String>,
    /// The run this worker started and has not moved to `running` yet.
    pub(super) began: Option<String>,
    /// The run whose segments this worker holds.
    pub(super) run: Option<String>,
    /// Segments this worker holds.
    pub(super) held: HashMap<u32, HeldSegment>,
    /// When each segment's counter last moved (expiry of other owners).
    pub(super) watch: ExpiryWatch,
    /// When the snapshot item's counter last moved during `starting`.
    pub(super) start_watch: ExpiryWatch,
}

/// Snapshot state in a lease table shared by many workers.
pub struct LeaseSnapshots {
    pub(super) table: LeaseTable,
    pub(super) ownership: Arc<LeaseOwnership>,
    pub(super) lease_duration: Duration,
    pub(super) tables: Mutex<HashMap<String, TableSnapshot>>,
    pub(super) started: Instant,
}

fn parse_sequence(text: &str) -> Option<SequenceNumber> {
    SequenceNumber::parse(text).ok()
}

impl LeaseSnapshots {
    /// Snapshot state in `table`, for the worker of `ownership` (whose view
    /// of the live workers sets each one's share of segments).
    pub fn new(
        table: LeaseTable,
        ownership: Arc<LeaseOwnership>,
        lease_duration: Duration,
    ) -> Self {
        Self {
            table,
            ownership,
            lease_duration,
            tables: Mutex::new(HashMap::new()),
            started: Instant::now(),
        }
    }

    pub(super) fn me(&self) -> &str {
        self.ownership.worker()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<String, TableSnapshot>> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The table's shard leases (every stream), from a consistent scan.
    async fn shard_leases(&self, table: &str) -> Result<Vec<Lease>, LeaseTableError> {
        let mut leases = self.table.scan(true).await?;
        leases.retain(|l| {
            !l.key.starts_with(HEARTBEAT_PREFIX)
                && !l.key.starts_with(SNAPSHOT_PREFIX)
                && l.table.as_deref() == Some(table)
        });
        Ok(leases)
    }

    /// Reads the snapshot item for the gate's decision and remembers its
    /// counter and floor: a begin that follows is conditional on exactly
    /// this counter, so it fails if anyone wrote the item after the
    /// decision. No other read may move what is remembered.
    async fn read_item_for_decision(
        &self,
        table: &str,
    ) -> Result<Option<SnapshotItem>, LeaseTableError> {
        let item = self.table.snapshot_item(table).await?;
        let mut tables = self.lock();
        let known = tables.entry(table.to_owned()).or_default();
        known.seen = item.as_ref().map(|i| i.counter);
        known.floor = item.as_ref().and_then(|i| i.floor.clone());
        Ok(item)
    }

    /// The stored snapshot as the decision logic sees it.
    async fn to_record(
        &self,
        item: SnapshotItem,
        table: &str,
    ) -> Result<SnapshotRecord, OwnershipError> {
        let phase = match item.state.as_str() {
            "needed" => SnapshotPhase::Needed {
                reason: item.reason.clone().unwrap_or_default(),
            },
            "done" => SnapshotPhase::Done,
            _ => SnapshotPhase::Running,
        };
        let mut segments: Vec<SegmentProgress> = (0..item.segments)
            .map(|segment| SegmentProgress {
                segment,
                ..SegmentProgress::default()
            })
            .collect();
        if phase != SnapshotPhase::Done {
            let stored = self
                .table
                .segment_items(table, item.segments)
                .await
                .map_err(lease_error)?;
            for found in stored
                .into_iter()
                .filter(|s| Some(&s.run) == item.run.as_ref())
            {
                if let Some(slot) = segments.get_mut(found.segment as usize) {
                    *slot = progress_of(&found);
                }
            }
        } else {
            segments.iter_mut().for_each(|s| s.done = true);
        }
        Ok(SnapshotRecord {
            phase,
            stream_arn: item.stream,
            version: item.version.as_deref().and_then(parse_sequence),
            segments,
            started_at_ms: item.started_at_ms.and_then(|ms| i64::try_from(ms).ok()),
        })
    }

    async fn do_begin(&self, start: SnapshotBegin) -> Result<bool, LeaseTableError> {
        let (seen, mut floor) = {
            let tables = self.lock();
            let known = tables.get(&start.table);
            (
                known.and_then(|k| k.seen),
                known.and_then(|k| k.floor.clone()),
            )
        };
        // Only a reset needs the table's shard leases: it drops them and
        // keeps their highest sequence as the floor.
        let dropped = if start.clear_checkpoints {
            let leases = self.shard_leases(&start.table).await?;
            floor = highest(&leases, floor.as_deref()).map(|s| s.as_str().to_owned());
            leases
        } else {
            Vec::new()
        };
        let run = format!("{}-{}", super::table::now_ms(), self.me());
        let fields = [
            ("state", Some("starting".to_owned())),
            ("reason", None),
            ("stream", Some(start.stream.clone())),
            ("version", Some(start.version.as_str().to_owned())),
            ("segments", Some(start.total_segments.to_string())),
            ("run", Some(run.clone())),
            ("started_at", Some(super::table::now_ms().to_string())),
            ("floor", floor.clone()),
        ];
        let written = self
            .table
            .write_snapshot_item(&start.table, seen, Some(self.me()), &fields)
            .await?;
        if written == Written::Lost {
            tracing::info!(table = %start.table, "another worker began the snapshot first; joining it");
            return Ok(false);
        }
        for lease in &dropped {
            self.table.delete_item(&lease.key).await?;
        }
        for shard in &start.closed_shards {
            let key = lease_key(&start.stream, shard);
            let names = (start.table.as_str(), start.stream.as_str(), shard.as_str());
            self.table
                .set_shard_position(&key, names, true, None)
                .await?;
        }
        for segment in 0..start.total_segments {
            self.table
                .create_segment(&start.table, &run, segment)
                .await?;
        }
        let mut tables = self.lock();
        let known = tables.entry(start.table.clone()).or_default();
        known.seen = seen.map_or(Some(1), |c| Some(c + 1));
        known.floor = floor;
        known.began = Some(run);
        Ok(true)
    }

    async fn do_go(&self, table: &str) -> Result<bool, LeaseTableError> {
        let (seen, began) = {
            let mut tables = self.lock();
            let known = tables.entry(table.to_owned()).or_default();
            (known.seen, known.began.take())
        };
        if began.is_none() {
            return Ok(true);
        }
        let fields = [("state", Some("running".to_owned()))];
        let written = self
            .table
            .write_snapshot_item(table, seen, None, &fields)
            .await?;
        if written == Written::Lost {
            tracing::warn!(table, "another worker took over this snapshot's start; this worker's position watchers record nothing");
            return Ok(false);
        }
        if let Some(known) = self.lock().get_mut(table) {
            known.seen = seen.map(|c| c + 1);
        }
        Ok(true)
    }

    async fn do_maintain(&self, table: &str) -> Result<SegmentsView, LeaseTableError> {
        let Some(item) = self.table.snapshot_item(table).await? else {
            return Ok(SegmentsView::default());
        };
        match item.state.as_str() {
            "done" => Ok(SegmentsView {
                finished_elsewhere: true,
                ..SegmentsView::default()
            }),
            "starting" => {
                self.take_over_start(table, &item).await?;
                Ok(SegmentsView::default())
            }
            "running" if item.segments == 0 || item.run.is_none() => {
                Err(LeaseTableError::Malformed {
                    table: self.table.name().to_owned(),
                    key: snapshot_key(table),
                    message: "a running snapshot without segments or run".to_owned(),
                })
            }
            "running" => self.keep_segments(table, &item).await,
            other => Err(LeaseTableError::Malformed {
                table: self.table.name().to_owned(),
                key: snapshot_key(table),
                message: format!(
                    "the snapshot became {other:?} while it ran; restart to decide again"
                ),
            }),
        }
    }

    /// A start whose worker stopped renewing for a lease duration: move it
    /// to `running` (creating the segments it did not).
    async fn take_over_start(
        &self,
        table: &str,
        item: &SnapshotItem,
    ) -> Result<(), LeaseTableError> {
        let view = LeaseView {
            key: snapshot_key(table),
            owner: item.owner.clone(),
            counter: item.counter,
            readable: true,
        };
        let free = {
            let mut tables = self.lock();
            let known = tables.entry(table.to_owned()).or_default();
            known
                .start_watch
                .observe(std::slice::from_ref(&view), self.now_ms());
            item.owner.as_deref() != Some(self.me())
                && known
                    .start_watch
                    .is_free(&view, self.now_ms(), self.lease_duration)
        };
        let Some(run) = item.run.as_deref().filter(|_| free) else {
            return Ok(());
        };
        let fields = [("state", Some("running".to_owned()))];
        if self
            .table
            .write_snapshot_item(table, Some(item.counter), None, &fields)
            .await?
            == Written::Done
        {
            tracing::warn!(table, from = ?item.owner,
                "took over the start of the snapshot: its worker stopped; shards without a recorded position keep their earlier one");
            for segment in 0..item.segments {
                self.table.create_segment(table, run, segment).await?;
            }
        }
        Ok(())
    }

    pub(super) fn held_run(&self, table: &str) -> String {
        self.lock()
            .get(table)
            .and_then(|k| k.run.clone())
            .unwrap_or_default()
    }

    async fn do_finish(&self, table: &str) -> Result<(), LeaseTableError> {
        for _ in 0..5 {
            let Some(item) = self.table.snapshot_item(table).await? else {
                return Ok(());
            };
            if item.state != "running" {
                return Ok(());
            }
            let fields = [
                ("state", Some("done".to_owned())),
                ("finished_at", Some(super::table::now_ms().to_string())),
            ];
            if self
                .table
                .write_snapshot_item(table, Some(item.counter), None, &fields)
                .await?
                == Written::Done
            {
                return Ok(());
            }
        }
        Err(self.table.call_error(
            "UpdateItem",
            "the snapshot item kept changing while finishing",
        ))
    }

    async fn do_request(&self, table: &str, reason: &str) -> Result<(), LeaseTableError> {
        for _ in 0..5 {
            let seen = self.table.snapshot_item(table).await?.map(|i| i.counter);
            let fields = [
                ("state", Some("needed".to_owned())),
                ("reason", Some(reason.to_owned())),
            ];
            if self
                .table
                .write_snapshot_item(table, seen, None, &fields)
                .await?
                == Written::Done
            {
                return Ok(());
            }
        }
        Err(self.table.call_error(
            "UpdateItem",
            "the snapshot item kept changing while requesting a snapshot",
        ))
    }
}

/// The highest sequence number over `leases` and `floor`.
fn highest(leases: &[Lease], floor: Option<&str>) -> Option<SequenceNumber> {
    leases
        .iter()
        .flat_map(|l| [Some(l.checkpoint.as_str()), l.start_at.as_deref()])
        .chain(std::iter::once(floor))
        .flatten()
        .filter_map(parse_sequence)
        .max()
}

/// The stream part of a shard lease key (`<stream>:<shard>`).
fn stream_of(key: &str) -> Option<&str> {
    key.rsplit_once(':').map(|(stream, _)| stream)
}

impl SnapshotState for LeaseSnapshots {
    fn gate_state<'a>(
        &'a self,
        table: &'a str,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<GateState, OwnershipError>> {
        Box::pin(async move {
            let leases = self.shard_leases(table).await.map_err(lease_error)?;
            let prefix = format!("{stream}:");
            let checkpoints = leases
                .iter()
                .filter_map(|l| Some((l.key.strip_prefix(&prefix)?.to_owned(), checkpoint_of(l))))
                .collect();
            let mut streams: Vec<String> = leases
                .iter()
                .filter_map(|l| stream_of(&l.key))
                .map(str::to_owned)
                .collect();
            streams.sort();
            streams.dedup();
            let record = match self
                .read_item_for_decision(table)
                .await
                .map_err(lease_error)?
            {
                Some(item) => Some(self.to_record(item, table).await?),
                None => None,
            };
            Ok(GateState {
                checkpoints,
                streams,
                record,
            })
        })
    }

    fn record<'a>(
        &'a self,
        table: &'a str,
    ) -> BoxFuture<'a, Result<Option<SnapshotRecord>, OwnershipError>> {
        Box::pin(async move {
            match self.table.snapshot_item(table).await.map_err(lease_error)? {
                Some(item) => Ok(Some(self.to_record(item, table).await?)),
                None => Ok(None),
            }
        })
    }

    fn highest_sequence<'a>(
        &'a self,
        table: &'a str,
    ) -> BoxFuture<'a, Result<Option<SequenceNumber>, OwnershipError>> {
        Box::pin(async move {
            let leases = self.shard_leases(table).await.map_err(lease_error)?;
            let item = self.table.snapshot_item(table).await.map_err(lease_error)?;
            Ok(highest(
                &leases,
                item.as_ref().and_then(|i| i.floor.as_deref()),
            ))
        })
    }

    fn begin(&self, start: SnapshotBegin) -> BoxFuture<'_, Result<bool, OwnershipError>> {
        Box::pin(async move { self.do_begin(start).await.map_err(lease_error) })
    }

    fn go<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<bool, OwnershipError>> {
        Box::pin(async move { self.do_go(table).await.map_err(lease_error) })
    }

    fn record_start<'a>(
        &'a self,
        table: &'a str,
        stream: &'a str,
        shard: &'a str,
        sequence: &'a SequenceNumber,
    ) -> BoxFuture<'a, Result<(), OwnershipError>> {
        Box::pin(async move {
            let key = lease_key(stream, shard);
            self.table
                .set_shard_position(&key, (table, stream, shard), false, Some(sequence.as_str()))
                .await
                .map_err(lease_error)
        })
    }

    fn poll_interval(&self) -> Duration {
        self.lease_duration / 3
    }

    fn maintain<'a>(
        &'a self,
        table: &'a str,
    ) -> BoxFuture<'a, Result<SegmentsView, OwnershipError>> {
        Box::pin(async move { self.do_maintain(table).await.map_err(lease_error) })
    }

    fn save_segment<'a>(
        &'a self,
        table: &'a str,
        progress: SegmentProgress,
    ) -> BoxFuture<'a, Result<(), OwnershipError>> {
        Box::pin(async move { self.do_save(table, progress).await.map_err(lease_error) })
    }

    fn finish<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<(), OwnershipError>> {
        Box::pin(async move { self.do_finish(table).await.map_err(lease_error) })
    }

    fn request<'a>(
        &'a self,
        table: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), OwnershipError>> {
        Box::pin(async move { self.do_request(table, reason).await.map_err(lease_error) })
    }

    fn release<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<(), OwnershipError>> {
        Box::pin(async move { self.do_release(table).await.map_err(lease_error) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(key: &str, checkpoint: &str, start_at: Option<&str>) -> Lease {
        Lease {
            key: key.into(),
            owner: None,
            counter: 1,
            checkpoint: checkpoint.into(),
            owner_switches: 0,
            parents: Vec::new(),
            table: Some("orders".into()),
            checkpointed_at_ms: None,
            start_at: start_at.map(str::to_owned),
        }
    }

    #[test]
    fn highest_covers_checkpoints_recorded_starts_and_the_floor() {
        let leases = [
            lease("arn:s:a", "900", None),
            lease("arn:s:b", "TRIM_HORIZON", Some("1500")),
            lease("arn:s:c", "SHARD_END", None),
        ];
        let highest_of = |floor| highest(&leases, floor).map(|s| s.as_str().to_owned());
        assert_eq!(highest_of(None).as_deref(), Some("1500"));
        assert_eq!(highest_of(Some("2000")).as_deref(), Some("2000"));
        assert_eq!(highest(&[], None), None);
    }

    #[test]
    fn the_stream_of_a_lease_key_keeps_the_colons_of_an_arn() {
        assert_eq!(
            stream_of("arn:aws:dynamodb:us-east-1:1:table/t/stream/2026:shardId-1"),
            Some("arn:aws:dynamodb:us-east-1:1:table/t/stream/2026")
        );
    }
}
