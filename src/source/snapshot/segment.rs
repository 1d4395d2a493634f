//! Scanning one snapshot segment: page by page from its stored progress,
//! each page handed to every sink as one chunk of `read` events, until the
//! segment ends, shutdown, or the segment's lease is lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use super::pacer::Pacer;
use super::progress::SnapshotCounters;
use super::runner::{SnapshotContext, SnapshotError};
use super::scan::{scan_page, ScanPage, ScanRequest};
use crate::backoff::Backoff;
use crate::coordinator::{publish, AckTracker, Outgoing, SegmentProgress, ShardKey};
use crate::dead_letter::DeadLetter;
use crate::decode::DecodeError;
use crate::metric_names as names;
use crate::model::{ChangeEvent, Item, Op, Position, SequenceNumber};

/// Pages sent but not yet stored: (segment, page) → (LastEvaluatedKey, items so far).
pub(super) type Pending = Mutex<HashMap<(u32, u64), (Option<String>, u64)>>;

/// What every segment of one snapshot run shares.
pub(super) struct Shared {
    pub(super) ctx: SnapshotContext,
    pub(super) version: SequenceNumber,
    pub(super) tracker: Arc<AckTracker>,
    pub(super) pending: Pending,
    pub(super) pacer: Pacer,
    pub(super) counters: Arc<SnapshotCounters>,
    pub(super) stream_label: Arc<str>,
}

/// How a segment's scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SegmentExit {
    /// Every page was handed to the sinks.
    Drained,
    /// Shutdown, or the segment's lease was lost.
    Stopped,
}

/// The tracker key of a segment.
pub(super) fn segment_key(stream_label: &Arc<str>, segment: u32) -> ShardKey {
    ShardKey {
        stream: Arc::clone(stream_label),
        shard: Arc::from(format!("segment-{segment}")),
    }
}

/// Reads one segment page by page from its stored progress.
pub(super) async fn scan_segment(
    shared: Arc<Shared>,
    progress: SegmentProgress,
    stop: CancellationToken,
) -> Result<SegmentExit, SnapshotError> {
    let mut scan = SegmentScan::new(&shared, &progress, &stop);
    loop {
        let page = match scan.next_page().await? {
            Fetched::Page(page) => page,
            Fetched::Retry => continue,
            Fetched::Stopped => return Ok(SegmentExit::Stopped),
        };
        shared.pacer.charge(page.capacity_units, page.items.len());
        shared.ctx.stats.record_snapshot_page(page.items.len());
        scan.page_number += 1;
        let (events, bytes) = scan.page_events(page.items)?;
        scan.hand_over(page.last_key.clone(), events, bytes).await?;
        match page.last_key {
            Some(next) => scan.start_key = Some(next),
            None => {
                shared.tracker.mark_drained(&scan.key);
                return Ok(SegmentExit::Drained);
            }
        }
    }
}

/// What one Scan call brought.
enum Fetched {
    /// A page.
    Page(ScanPage),
    /// A retryable failure, waited for: call again.
    Retry,
    /// Shutdown, or the segment's lease was lost.
    Stopped,
}

/// One segment's scan: where it stands and what labels its events.
struct SegmentScan<'a> {
    shared: &'a Shared,
    stop: &'a CancellationToken,
    segment: u32,
    table: Arc<str>,
    /// The segment's key in the ack tracker.
    key: ShardKey,
    /// The position label of the segment's events and dead letters.
    shard_label: Arc<str>,
    /// Where the next page starts (`None`: the segment's start).
    start_key: Option<String>,
    /// Pages read so far, this run's included.
    page_number: u64,
    /// Items handed to the sinks so far, this run's included.
    items_so_far: u64,
    retry: Backoff,
}

impl<'a> SegmentScan<'a> {
    fn new(shared: &'a Shared, progress: &SegmentProgress, stop: &'a CancellationToken) -> Self {
        Self {
            shared,
            stop,
            segment: progress.segment,
            table: Arc::from(shared.ctx.table.name.as_str()),
            key: segment_key(&shared.stream_label, progress.segment),
            shard_label: Arc::from(format!("snapshot-{}", progress.segment)),
            start_key: progress.last_key.clone(),
            page_number: progress.pages,
            items_so_far: progress.items,
            retry: Backoff::new(Duration::from_millis(100), Duration::from_secs(10)),
        }
    }

    /// Waits for the pacer, then scans the next page; a retryable failure
    /// waits its backoff first.
    async fn next_page(&mut self) -> Result<Fetched, SnapshotError> {
        let ctx = &self.shared.ctx;
        tokio::select! {
            () = self.shared.pacer.wait() => {}
            () = stopped(ctx, self.stop) => return Ok(Fetched::Stopped),
        }
        let request = ScanRequest {
            table: &ctx.table.name,
            segment: self.segment,
            total_segments: ctx.table.snapshot_segments,
            start_key: self.start_key.as_deref(),
            limit: ctx.table.snapshot_page_size,
            consistent_read: ctx.table.snapshot_consistent_read,
        };
        let page = tokio::select! {
            page = scan_page(ctx.api.tables_client(), &request) => page,
            () = stopped(ctx, self.stop) => return Ok(Fetched::Stopped),
        };
        match page {
            Ok(page) => {
                self.retry.reset();
                Ok(Fetched::Page(page))
            }
            Err(err) if err.is_retryable() => {
                let delay = self.retry.next_delay();
                tracing::warn!(table = %self.table, segment = self.segment,
                    "Scan failed, retrying in {delay:?}: {err}");
                tokio::select! {
                    () = tokio::time::sleep(delay) => Ok(Fetched::Retry),
                    () = stopped(ctx, self.stop) => Ok(Fetched::Stopped),
                }
            }
            Err(err) => Err(ctx.source_error(err)),
        }
    }

    /// The page's items as `read` events, with their total size; items
    /// that do not decode or lack a key attribute are dead-lettered.
    fn page_events(
        &self,
        items: Vec<Result<Item, (DecodeError, Box<RawValue>)>>,
    ) -> Result<(Vec<ChangeEvent>, u64), SnapshotError> {
        let ctx = &self.shared.ctx;
        let mut events = Vec::with_capacity(items.len());
        let mut bytes = 0u64;
        for (index, item) in items.into_iter().enumerate() {
            let event_id = format!("snapshot-{}-{}-{index}", self.segment, self.page_number);
            match item {
                Ok(item) => {
                    match read_event(self.shared, &self.table, &self.shard_label, event_id, item) {
                        Ok(event) => {
                            bytes += event.size_bytes;
                            events.push(event);
                        }
                        Err((reason, item)) => {
                            let raw = serde_json::value::to_raw_value(&item).ok();
                            dead_letter(ctx, &self.shard_label, &reason, raw.as_deref())?;
                        }
                    }
                }
                Err((err, raw)) => {
                    dead_letter(ctx, &self.shard_label, &err.to_string(), Some(&raw))?;
                }
            }
        }
        Ok((events, bytes))
    }

    /// Notes the page as pending (its progress is stored once every sink
    /// acknowledged it), publishes its events as one chunk and counts them.
    async fn hand_over(
        &mut self,
        last_key: Option<String>,
        events: Vec<ChangeEvent>,
        bytes: u64,
    ) -> Result<(), SnapshotError> {
        let (shared, ctx) = (self.shared, &self.shared.ctx);
        self.items_so_far += events.len() as u64;
        shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                (self.segment, self.page_number),
                (last_key, self.items_so_far),
            );
        let page_sequence =
            SequenceNumber::parse(&self.page_number.to_string()).map_err(|e| ctx.store_error(e))?;
        let count = events.len() as u64;
        let outgoing = Outgoing {
            table: Arc::clone(&self.table),
            events,
            bytes,
            sweep_below: None,
        };
        publish(
            &shared.tracker,
            &ctx.sinks,
            &self.key,
            page_sequence,
            outgoing,
        )
        .await
        .map_err(|err| ctx.publish_error(err))?;
        shared
            .counters
            .items
            .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!(names::SNAPSHOT_ITEMS, "table" => ctx.table.name.clone())
            .increment(count);
        Ok(())
    }
}

/// A scanned item as a `read` event versioned at the snapshot's version.
fn read_event(
    shared: &Shared,
    table: &Arc<str>,
    shard: &Arc<str>,
    event_id: String,
    item: Item,
) -> Result<ChangeEvent, (String, Item)> {
    let mut keys = Item::new();
    for key in &shared.ctx.schema.keys {
        let Some(value) = item.get(&key.name) else {
            return Err((
                format!("scanned item lacks key attribute {:?}", key.name),
                item,
            ));
        };
        keys.insert(key.name.clone(), value.clone());
    }
    let size_bytes = serde_json::to_string(&item).map_or(0, |s| s.len() as u64);
    Ok(ChangeEvent {
        table: Arc::clone(table),
        op: Op::Read,
        keys,
        new_image: Some(item.into()),
        old_image: None,
        position: Position {
            shard: Arc::clone(shard),
            sequence: shared.version.clone(),
        },
        version: shared.version.clone(),
        approx_time_ms: Some(crate::clock::now_ms()),
        ttl_delete: false,
        event_id,
        size_bytes,
    })
}

fn dead_letter(
    ctx: &SnapshotContext,
    shard: &str,
    reason: &str,
    raw: Option<&serde_json::value::RawValue>,
) -> Result<(), SnapshotError> {
    let null = serde_json::value::RawValue::from_string("null".into()).map_err(|e| {
        SnapshotError::DeadLetter {
            table: ctx.table_name(),
            message: e.to_string(),
        }
    })?;
    ctx.stats.record_decode_errors(1);
    ctx.dead_letters
        .write(&[DeadLetter {
            table: &ctx.table.name,
            stage: "snapshot",
            shard,
            sequence: None,
            error: reason,
            record: raw.unwrap_or(&null),
        }])
        .map_err(|e| SnapshotError::DeadLetter {
            table: ctx.table_name(),
            message: e.to_string(),
        })
}

/// Resolves at shutdown or when the segment must stop.
async fn stopped(ctx: &SnapshotContext, stop: &CancellationToken) {
    tokio::select! {
        () = ctx.cancel.cancelled() => {}
        () = stop.cancelled() => {}
    }
}
