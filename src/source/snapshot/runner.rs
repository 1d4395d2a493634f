//! Runs one table's snapshot: records the stream positions, scans the
//! segments in parallel within the read budget, hands each page to every
//! sink as one chunk of `read` events, and stores each segment's progress
//! once every sink acknowledged its pages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::pacer::Pacer;
use super::positions::Watchers;
use super::progress::{self, Report, SnapshotCounters};
use super::scan::{scan_page, ScanRequest};
use crate::backoff::Backoff;
use crate::config::TableConfig;
use crate::coordinator::{
    publish, AckTracker, CheckpointStore, Chunk, Outgoing, PublishError, SegmentProgress, ShardKey,
    SnapshotPhase, SnapshotStart,
};
use crate::dead_letter::{DeadLetter, DeadLetters};
use crate::model::{ChangeEvent, Item, Op, Position, SequenceNumber, TableSchema};
use crate::source::shard::PositionProbe;
use crate::source::streams::StreamsApi;
use crate::source::SourceError;
use crate::stats::Stats;

/// Everything a snapshot needs.
#[derive(Clone)]
pub struct SnapshotContext {
    /// DynamoDB clients (Scan, DescribeTable).
    pub api: Arc<StreamsApi>,
    /// The stream followed after the snapshot, to record where it resumes.
    pub probe: Arc<dyn PositionProbe>,
    /// How the snapshot's rows are versioned.
    pub versions: super::SnapshotVersions,
    /// The table's configuration (segments, budget, consistency).
    pub table: Arc<TableConfig>,
    /// Key attributes.
    pub schema: TableSchema,
    /// The id of the stream followed after the snapshot.
    pub stream_arn: Arc<str>,
    /// Checkpoint and snapshot state.
    pub store: Arc<Mutex<CheckpointStore>>,
    /// Sink channels.
    pub sinks: Arc<[(String, mpsc::Sender<Arc<Chunk>>)]>,
    /// Items that cannot be decoded go here.
    pub dead_letters: Arc<DeadLetters>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Shutdown.
    pub cancel: CancellationToken,
    /// Progress log interval when not on a terminal.
    pub progress_interval: Duration,
}

/// Why a snapshot stopped the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Scan or stream calls failed for good.
    #[error("table {table}: snapshot: {source}")]
    Source {
        /// Source table.
        table: String,
        /// The failure.
        source: SourceError,
    },
    /// The snapshot state could not be read or written.
    #[error("table {table}: snapshot state: {message}")]
    Store {
        /// Source table.
        table: String,
        /// What failed.
        message: String,
    },
    /// A sink stopped (its own error explains why).
    #[error("table {table}: snapshot: a sink stopped")]
    SinkStopped {
        /// Source table.
        table: String,
    },
    /// An undecodable item could not be written to the dead-letter file.
    #[error("table {table}: snapshot: {message}")]
    DeadLetter {
        /// Source table.
        table: String,
        /// What failed.
        message: String,
    },
}

/// How a snapshot run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every segment is scanned and acknowledged; streaming may start.
    Finished,
    /// Shutdown came first; the next start resumes.
    Cancelled,
}

impl SnapshotContext {
    fn table_name(&self) -> String {
        self.table.name.clone()
    }

    pub(super) fn store_error(&self, err: impl std::fmt::Display) -> SnapshotError {
        SnapshotError::Store {
            table: self.table_name(),
            message: err.to_string(),
        }
    }

    fn publish_error(&self, err: PublishError) -> SnapshotError {
        match err {
            PublishError::SinkGone { .. } => SnapshotError::SinkStopped {
                table: self.table_name(),
            },
            other => self.store_error(other),
        }
    }

    fn source_error(&self, source: SourceError) -> SnapshotError {
        SnapshotError::Source {
            table: self.table_name(),
            source,
        }
    }

    pub(super) fn with_store<T>(&self, f: impl FnOnce(&mut CheckpointStore) -> T) -> T {
        f(&mut self.store.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Begins a snapshot: records the stream positions (closed shards finished,
/// a LATEST watcher per open shard), then scans to the end.
pub async fn begin(
    ctx: &SnapshotContext,
    clear_checkpoints: bool,
    reason: &str,
) -> Result<Outcome, SnapshotError> {
    let table = ctx.table_name();
    let shards = ctx
        .probe
        .probe_shards()
        .await
        .map_err(|e| ctx.source_error(e))?;
    let (closed, open): (Vec<_>, Vec<_>) = shards.iter().partition(|s| s.closed);
    let closed: Vec<String> = closed.into_iter().map(|s| s.id.clone()).collect();
    let open: Vec<String> = open.into_iter().map(|s| s.id.clone()).collect();
    // Above every version the sinks hold from earlier runs (so the snapshot
    // overwrites them and the end-of-snapshot sweep finds what it did not
    // see), below every change still to come from the stream.
    let version = super::version::snapshot_version(ctx)?;
    ctx.with_store(|s| {
        s.begin_snapshot(&SnapshotStart {
            table: &table,
            stream_arn: &ctx.stream_arn,
            version: &version,
            total_segments: ctx.table.snapshot_segments,
            clear_checkpoints,
            closed_shards: &closed,
        })
    })
    .map_err(|e| ctx.store_error(e))?;
    // The iterators at LATEST exist before the first Scan page is read.
    let watchers = Watchers::start(&ctx.probe, &ctx.store, &table, &ctx.stream_arn, &open)
        .await
        .map_err(|e| ctx.source_error(e))?;
    tracing::info!(
        table = %table,
        reason,
        version = %version,
        segments = ctx.table.snapshot_segments,
        open_shards = open.len(),
        closed_shards = closed.len(),
        "snapshot started: stream positions recorded, scanning"
    );
    let outcome = scan(ctx).await;
    watchers.stop().await;
    finish(ctx, outcome?)
}

/// Continues a snapshot a previous run began, from each segment's stored
/// progress (the stream positions were recorded when it began).
pub async fn resume(ctx: &SnapshotContext) -> Result<Outcome, SnapshotError> {
    tracing::info!(table = %ctx.table.name, "resuming the unfinished snapshot");
    let outcome = scan(ctx).await?;
    finish(ctx, outcome)
}

fn finish(ctx: &SnapshotContext, outcome: Outcome) -> Result<Outcome, SnapshotError> {
    if outcome == Outcome::Finished {
        ctx.with_store(|s| s.finish_snapshot(&ctx.table.name))
            .map_err(|e| ctx.store_error(e))?;
        tracing::info!(table = %ctx.table.name, "snapshot finished; streaming from the recorded positions");
    }
    Ok(outcome)
}

/// Pages sent but not yet stored: (segment, page) → (LastEvaluatedKey, items so far).
type Pending = Mutex<HashMap<(u32, u64), (Option<String>, u64)>>;

struct Shared {
    ctx: SnapshotContext,
    version: SequenceNumber,
    tracker: Arc<AckTracker>,
    pending: Pending,
    pacer: Pacer,
    counters: Arc<SnapshotCounters>,
    stream_label: Arc<str>,
}

fn segment_key(stream_label: &Arc<str>, segment: u32) -> ShardKey {
    ShardKey {
        stream: Arc::clone(stream_label),
        shard: Arc::from(format!("segment-{segment}")),
    }
}

/// Scans every unfinished segment and waits for the sinks' acknowledgements.
async fn scan(ctx: &SnapshotContext) -> Result<Outcome, SnapshotError> {
    let table = ctx.table_name();
    let record = ctx
        .with_store(|s| s.snapshot(&table))
        .map_err(|e| ctx.store_error(e))?
        .filter(|r| r.phase == SnapshotPhase::Running)
        .ok_or_else(|| ctx.store_error("no running snapshot is stored"))?;
    let version = record
        .version
        .clone()
        .ok_or_else(|| ctx.store_error("the stored snapshot has no version"))?;
    let total_segments = u32::try_from(record.segments.len()).unwrap_or(u32::MAX);
    let resumed_items: u64 = record.segments.iter().map(|s| s.items).sum();
    let (estimated_items, _) = ctx.api.table_estimate(&table).await.unwrap_or((0, 0));
    if let Some(rate) = ctx.table.snapshot_max_items_per_second {
        if let Some(total) = progress::outlasts_retention(estimated_items, rate) {
            tracing::warn!(table = %table,
                "snapshot_max_items_per_second = {rate} makes the snapshot of about {estimated_items} items take \
                 {:.1} h, close to or beyond the stream's 24-hour retention", total.as_secs_f64() / 3600.0);
        }
    }
    let counters = Arc::new(SnapshotCounters::default());
    counters
        .items
        .store(resumed_items, std::sync::atomic::Ordering::Relaxed);
    let done_before = record.segments.iter().filter(|s| s.done).count();
    counters.segments_done.store(
        u32::try_from(done_before).unwrap_or(u32::MAX),
        std::sync::atomic::Ordering::Relaxed,
    );
    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        version,
        tracker: AckTracker::new(),
        pending: Mutex::new(HashMap::new()),
        pacer: Pacer::new(
            ctx.table.snapshot_max_rcu,
            ctx.table.snapshot_max_items_per_second,
        ),
        counters: Arc::clone(&counters),
        stream_label: Arc::from(format!("snapshot:{table}")),
    });
    let reporter_stop = CancellationToken::new();
    let reporter = tokio::spawn(progress::report(
        Report {
            table: table.clone(),
            estimated_items,
            total_segments,
            resumed_items,
            interval: ctx.progress_interval,
        },
        Arc::clone(&counters),
        reporter_stop.clone(),
    ));
    let mut segments = JoinSet::new();
    let mut open_segments = 0usize;
    for progress in record.segments.iter().filter(|s| !s.done) {
        let key = segment_key(&shared.stream_label, progress.segment);
        let stored_page = (progress.pages > 0)
            .then(|| SequenceNumber::parse(&progress.pages.to_string()))
            .transpose()
            .map_err(|e| ctx.store_error(e))?;
        shared
            .tracker
            .open_shard(key, Arc::from(table.as_str()), stored_page);
        open_segments += 1;
        segments.spawn(scan_segment(Arc::clone(&shared), progress.clone()));
    }
    let mut result = persist_until_done(&shared, &mut segments, open_segments).await;
    if matches!(result, Ok(Outcome::Finished)) && shared.version.digits() != "0" {
        result = sweep(&shared).await;
    }
    reporter_stop.cancel();
    let _ = reporter.await;
    result
}

/// Tells every sink that the snapshot is complete, so state-keeping sinks
/// mark the rows it did not rewrite (versions below it) deleted, and waits
/// for their acknowledgements. Without earlier versions (version 0) there
/// is nothing to sweep.
async fn sweep(shared: &Arc<Shared>) -> Result<Outcome, SnapshotError> {
    let ctx = &shared.ctx;
    let table: Arc<str> = Arc::from(ctx.table.name.as_str());
    let key = ShardKey {
        stream: Arc::clone(&shared.stream_label),
        shard: Arc::from("sweep"),
    };
    shared
        .tracker
        .open_shard(key.clone(), Arc::clone(&table), None);
    let first = SequenceNumber::parse("1").map_err(|e| ctx.store_error(e))?;
    let sweep = Outgoing {
        sweep_below: Some(shared.version.clone()),
        ..Outgoing::events(Arc::clone(&table), Vec::new())
    };
    publish(&shared.tracker, &ctx.sinks, &key, first, sweep)
        .await
        .map_err(|err| ctx.publish_error(err))?;
    while shared.tracker.in_flight() > 0 {
        tokio::select! {
            () = shared.tracker.changed() => {}
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = ctx.cancel.cancelled() => return Ok(Outcome::Cancelled),
        }
    }
    Ok(Outcome::Finished)
}

/// Stores acknowledged progress until every segment is done, a segment
/// fails, or shutdown.
async fn persist_until_done(
    shared: &Arc<Shared>,
    segments: &mut JoinSet<Result<(), SnapshotError>>,
    mut open_segments: usize,
) -> Result<Outcome, SnapshotError> {
    let ctx = &shared.ctx;
    loop {
        if open_segments == 0 {
            return Ok(Outcome::Finished);
        }
        tokio::select! {
            joined = segments.join_next(), if !segments.is_empty() => {
                match joined {
                    Some(Ok(Ok(()))) | None => {}
                    Some(Ok(Err(err))) => {
                        segments.abort_all();
                        return Err(err);
                    }
                    Some(Err(join)) => {
                        segments.abort_all();
                        return Err(ctx.store_error(format!("a segment task failed: {join}")));
                    }
                }
            }
            () = shared.tracker.changed() => {}
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            () = ctx.cancel.cancelled() => {
                // Store what is acknowledged already, then stop.
                store_updates(shared, &mut open_segments)?;
                while segments.join_next().await.is_some() {}
                return Ok(Outcome::Cancelled);
            }
        }
        store_updates(shared, &mut open_segments)?;
    }
}

/// Takes the segments' acknowledged pages and stores their progress.
fn store_updates(shared: &Shared, open_segments: &mut usize) -> Result<(), SnapshotError> {
    let ctx = &shared.ctx;
    for update in shared.tracker.take_updates() {
        let Some(segment) = update
            .key
            .shard
            .strip_prefix("segment-")
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(page) = update
            .sequence
            .as_ref()
            .and_then(|p| p.digits().parse::<u64>().ok())
        else {
            continue;
        };
        let entry = {
            let mut pending = shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let entry = pending.get(&(segment, page)).cloned();
            pending.retain(|(s, p), _| *s != segment || *p > page);
            entry
        };
        let Some((last_key, items)) = entry else {
            continue;
        };
        let progress = SegmentProgress {
            segment,
            done: update.finished,
            last_key,
            items,
            pages: page,
        };
        ctx.with_store(|s| s.save_segment(&ctx.table.name, &progress))
            .map_err(|e| ctx.store_error(e))?;
        if update.finished {
            *open_segments = open_segments.saturating_sub(1);
            shared
                .counters
                .segments_done
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Reads one segment page by page from its stored progress.
async fn scan_segment(shared: Arc<Shared>, progress: SegmentProgress) -> Result<(), SnapshotError> {
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
            () = ctx.cancel.cancelled() => return Ok(()),
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
            () = ctx.cancel.cancelled() => return Ok(()),
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
                    () = ctx.cancel.cancelled() => return Ok(()),
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
        match page.last_key {
            Some(next) => start_key = Some(next),
            None => {
                shared.tracker.mark_drained(&key);
                return Ok(());
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
        approx_time_ms: Some(crate::coordinator::store::now_ms()),
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
