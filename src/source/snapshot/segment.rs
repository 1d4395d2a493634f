//! Scanning one snapshot segment: page by page from its stored progress,
//! each page handed to every sink as one chunk of `read` events, until the
//! segment ends, shutdown, or the segment's lease is lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::pacer::Pacer;
use super::progress::SnapshotCounters;
use super::runner::{SnapshotContext, SnapshotError};
use super::scan::{scan_page, ScanRequest};
use crate::backoff::Backoff;
use crate::coordinator::{publish, AckTracker, Outgoing, SegmentProgress, ShardKey};
use crate::dead_letter::DeadLetter;
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
    let ctx = &shared.ctx;
    let table: Arc<str> = Arc::from(ctx.table.name.as_str());
    let key = segment_key(&shared.stream_label, progress.segment);
    let shard_label: Arc<str> = Arc::from(format!("snapshot-{}", progress.segment));
    let total_segments = ctx.table.snapshot_segments;
    let mut start_key = progress.last_key.clone();
    let mut page_number = progress.pages;
    let mut items_so_far = progress.items;
    let mut retry = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
    loop {
        tokio::select! {
            () = shared.pacer.wait() => {}
            () = stopped(ctx, &stop) => return Ok(SegmentExit::Stopped),
        }
        let request = ScanRequest {
            table: &ctx.table.name,
            segment: progress.segment,
            total_segments,
            start_key: start_key.as_deref(),
            limit: ctx.table.snapshot_page_size,
            consistent_read: ctx.table.snapshot_consistent_read,
        };
        let page = tokio::select! {
            page = scan_page(ctx.api.tables_client(), &request) => page,
            () = stopped(ctx, &stop) => return Ok(SegmentExit::Stopped),
        };
        let page = match page {
            Ok(page) => {
                retry.reset();
                page
            }
            Err(err) if err.is_retryable() => {
                let delay = retry.next_delay();
                tracing::warn!(table = %table, segment = progress.segment,
                    "Scan failed, retrying in {delay:?}: {err}");
                tokio::select! {
                    () = tokio::time::sleep(delay) => continue,
                    () = stopped(ctx, &stop) => return Ok(SegmentExit::Stopped),
                }
            }
            Err(err) => return Err(ctx.source_error(err)),
        };
        shared.pacer.charge(page.capacity_units, page.items.len());
        ctx.stats.record_snapshot_page(page.items.len());
        page_number += 1;
        let mut events = Vec::with_capacity(page.items.len());
        let mut bytes = 0u64;
        for (index, item) in page.items.into_iter().enumerate() {
            let event_id = format!("snapshot-{}-{page_number}-{index}", progress.segment);
            match item {
                Ok(item) => match read_event(&shared, &table, &shard_label, event_id, item) {
                    Ok(event) => {
                        bytes += event.size_bytes;
                        events.push(event);
                    }
                    Err((reason, item)) => {
                        let raw = serde_json::value::to_raw_value(&item).ok();
                        dead_letter(ctx, &shard_label, &reason, raw.as_deref())?;
                    }
                },
                Err((err, raw)) => dead_letter(ctx, &shard_label, &err.to_string(), Some(&raw))?,
            }
        }
        items_so_far += events.len() as u64;
        shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                (progress.segment, page_number),
                (page.last_key.clone(), items_so_far),
            );
        let page_sequence =
            SequenceNumber::parse(&page_number.to_string()).map_err(|e| ctx.store_error(e))?;
        let count = events.len() as u64;
        let outgoing = Outgoing {
            table: Arc::clone(&table),
            events,
            bytes,
            sweep_below: None,
        };
        publish(&shared.tracker, &ctx.sinks, &key, page_sequence, outgoing)
            .await
            .map_err(|err| ctx.publish_error(err))?;
        shared
            .counters
            .items
            .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!(names::SNAPSHOT_ITEMS, "table" => ctx.table.name.clone())
            .increment(count);
        match page.last_key {
            Some(next) => start_key = Some(next),
            None => {
                shared.tracker.mark_drained(&key);
                return Ok(SegmentExit::Drained);
            }
        }
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
