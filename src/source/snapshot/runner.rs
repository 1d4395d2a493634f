//! Runs one table's snapshot: records the stream positions, scans the
//! segments in parallel within the read budget, hands each page to every
//! sink as one chunk of `read` events, and stores each segment's progress
//! once every sink acknowledged its pages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::pacer::Pacer;
use super::positions::Watchers;
use super::progress::{self, Report, SnapshotCounters};
use super::segment::{scan_segment, segment_key, SegmentExit, Shared};
use crate::config::TableConfig;
use crate::coordinator::{
    publish, AckTracker, ClaimedSegment, Outgoing, PublishError, SegmentProgress, ShardKey,
    SnapshotBegin, SnapshotPhase, SnapshotRecord, SnapshotState,
};
use crate::dead_letter::DeadLetters;
use crate::metric_names as names;
use crate::model::{SequenceNumber, TableSchema};
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
    /// Snapshot state (embedded, or in the lease table).
    pub state: Arc<dyn SnapshotState>,
    /// Sink channels.
    pub sinks: crate::coordinator::SinkSenders,
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
    pub(super) fn table_name(&self) -> String {
        self.table.name.clone()
    }

    pub(super) fn store_error(&self, err: impl std::fmt::Display) -> SnapshotError {
        SnapshotError::Store {
            table: self.table_name(),
            message: err.to_string(),
        }
    }

    pub(super) fn publish_error(&self, err: PublishError) -> SnapshotError {
        match err {
            PublishError::SinkGone { .. } => SnapshotError::SinkStopped {
                table: self.table_name(),
            },
            other => self.store_error(other),
        }
    }

    pub(super) fn source_error(&self, source: SourceError) -> SnapshotError {
        SnapshotError::Source {
            table: self.table_name(),
            source,
        }
    }
}

/// Begins a snapshot: records the stream positions (closed shards finished,
/// a LATEST watcher per open shard), then scans to the end. When another
/// worker began one first, joins that one instead.
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
    let version = super::version::snapshot_version(ctx).await?;
    let began = ctx
        .state
        .begin(SnapshotBegin {
            table: table.clone(),
            stream: ctx.stream_arn.to_string(),
            version: version.clone(),
            total_segments: ctx.table.snapshot_segments,
            clear_checkpoints,
            closed_shards: closed.clone(),
        })
        .await
        .map_err(|e| ctx.store_error(e))?;
    if !began {
        return resume(ctx).await;
    }
    // The iterators at LATEST exist before the first Scan page is read.
    let watchers = Watchers::start(&ctx.probe, &ctx.state, &table, &ctx.stream_arn, &open)
        .await
        .map_err(|e| ctx.source_error(e))?;
    if ctx.state.go(&table).await.map_err(|e| ctx.store_error(e))? {
        watchers.arm();
    }
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
    outcome
}

/// Continues a snapshot a previous run (or another worker) began, from each
/// segment's stored progress (the stream positions were recorded when it
/// began).
pub async fn resume(ctx: &SnapshotContext) -> Result<Outcome, SnapshotError> {
    tracing::info!(table = %ctx.table.name, "resuming the unfinished snapshot");
    scan(ctx).await
}

/// Scans the segments this process claims until every segment is done
/// (then sweeps and finishes), another process finished, or shutdown.
async fn scan(ctx: &SnapshotContext) -> Result<Outcome, SnapshotError> {
    let table = ctx.table_name();
    let Some((record, version)) = running_snapshot(ctx, &table).await? else {
        return Ok(Outcome::Finished);
    };
    let total_segments = u32::try_from(record.segments.len()).unwrap_or(u32::MAX);
    let resumed_items: u64 = record.segments.iter().map(|s| s.items).sum();
    let (estimated_items, _) = ctx.api.table_estimate(&table).await.unwrap_or((0, 0));
    warn_when_outlasting_retention(ctx, estimated_items);
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
        counters,
        reporter_stop.clone(),
    ));
    let mut result = scan_claimed(&shared).await;
    if matches!(result, Ok(Ended::AllDone)) {
        result = sweep(&shared).await;
    }
    reporter_stop.cancel();
    let _ = reporter.await;
    conclude(ctx, &table, result?).await
}

/// The stored snapshot and its version while it runs; `None` when it is
/// already done. No snapshot, or one in another phase, is an error.
async fn running_snapshot(
    ctx: &SnapshotContext,
    table: &str,
) -> Result<Option<(SnapshotRecord, SequenceNumber)>, SnapshotError> {
    let record = ctx
        .state
        .record(table)
        .await
        .map_err(|e| ctx.store_error(e))?
        .ok_or_else(|| ctx.store_error("no snapshot is stored"))?;
    if record.phase == SnapshotPhase::Done {
        return Ok(None);
    }
    if record.phase != SnapshotPhase::Running {
        return Err(ctx.store_error("no running snapshot is stored"));
    }
    let version = record
        .version
        .clone()
        .ok_or_else(|| ctx.store_error("the stored snapshot has no version"))?;
    Ok(Some((record, version)))
}

/// Warns when the configured item rate makes the snapshot of about
/// `estimated_items` last close to or beyond the stream's retention.
fn warn_when_outlasting_retention(ctx: &SnapshotContext, estimated_items: u64) {
    let Some(rate) = ctx.table.snapshot_max_items_per_second else {
        return;
    };
    if let Some(total) = progress::outlasts_retention(estimated_items, rate) {
        tracing::warn!(table = %ctx.table.name,
            "snapshot_max_items_per_second = {rate} makes the snapshot of about {estimated_items} items take \
             {:.1} h, close to or beyond the stream's 24-hour retention", total.as_secs_f64() / 3600.0);
    }
}

/// Records the snapshot as finished when this process scanned the last of
/// it, and says what the table runner does next.
async fn conclude(
    ctx: &SnapshotContext,
    table: &str,
    ended: Ended,
) -> Result<Outcome, SnapshotError> {
    match ended {
        Ended::AllDone => {
            ctx.state
                .finish(table)
                .await
                .map_err(|e| ctx.store_error(e))?;
            tracing::info!(table = %table, "snapshot finished; streaming from the recorded positions");
            Ok(Outcome::Finished)
        }
        Ended::FinishedElsewhere => {
            tracing::info!(table = %table, "snapshot finished by another worker; streaming from the recorded positions");
            Ok(Outcome::Finished)
        }
        Ended::Cancelled => Ok(Outcome::Cancelled),
    }
}

/// How the scanning of claimed segments ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Every segment is done: sweep, then finish.
    AllDone,
    /// Another process finished the snapshot.
    FinishedElsewhere,
    /// Shutdown.
    Cancelled,
}

/// Claims segments and scans them, storing acknowledged progress, until
/// every segment is done, another process finished, a segment fails, or
/// shutdown.
async fn scan_claimed(shared: &Arc<Shared>) -> Result<Ended, SnapshotError> {
    let ctx = &shared.ctx;
    let table = ctx.table_name();
    let mut segments: JoinSet<Result<SegmentExit, SnapshotError>> = JoinSet::new();
    let mut open_here = 0usize;
    let mut next_look = Instant::now();
    loop {
        if Instant::now() >= next_look {
            let view = ctx
                .state
                .maintain(&table)
                .await
                .map_err(|e| ctx.store_error(e))?;
            next_look = Instant::now() + ctx.state.poll_interval();
            if view.finished_elsewhere {
                segments.abort_all();
                return Ok(Ended::FinishedElsewhere);
            }
            for claimed in view.claimed {
                start_segment(shared, &mut segments, claimed)?;
                open_here += 1;
            }
            if view.all_done && open_here == 0 {
                return Ok(Ended::AllDone);
            }
        }
        let until_look = next_look.saturating_duration_since(Instant::now());
        tokio::select! {
            joined = segments.join_next(), if !segments.is_empty() => {
                match joined {
                    Some(Ok(Ok(SegmentExit::Drained))) | None => {}
                    Some(Ok(Ok(SegmentExit::Stopped))) => open_here = open_here.saturating_sub(1),
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
            () = tokio::time::sleep(until_look.min(Duration::from_millis(200))) => {}
            () = ctx.cancel.cancelled() => {
                // Store what is acknowledged already, then give the segments up.
                store_updates(shared, &mut open_here).await?;
                while segments.join_next().await.is_some() {}
                ctx.state.release(&table).await.map_err(|e| ctx.store_error(e))?;
                return Ok(Ended::Cancelled);
            }
        }
        let before = open_here;
        store_updates(shared, &mut open_here).await?;
        if before > 0 && open_here == 0 {
            // This process's segments are done: look at the others now.
            next_look = Instant::now();
        }
    }
}

/// Starts scanning a segment this process claimed: opens it in the ack
/// tracker at its stored page (pages of an earlier claim no longer wait
/// for acknowledgement) and spawns its scan.
fn start_segment(
    shared: &Arc<Shared>,
    segments: &mut JoinSet<Result<SegmentExit, SnapshotError>>,
    claimed: ClaimedSegment,
) -> Result<(), SnapshotError> {
    let ctx = &shared.ctx;
    let segment = claimed.progress.segment;
    let stored_page = (claimed.progress.pages > 0)
        .then(|| SequenceNumber::parse(&claimed.progress.pages.to_string()))
        .transpose()
        .map_err(|e| ctx.store_error(e))?;
    shared
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|(s, _), _| *s != segment);
    shared.tracker.open_shard(
        segment_key(&shared.stream_label, segment),
        Arc::from(ctx.table.name.as_str()),
        stored_page,
    );
    segments.spawn(scan_segment(
        Arc::clone(shared),
        claimed.progress,
        claimed.stop,
    ));
    Ok(())
}

/// Tells every sink that the snapshot is complete, so state-keeping sinks
/// mark the rows it did not rewrite (versions below it) deleted, and waits
/// for their acknowledgements. Without earlier versions (version 0) there
/// is nothing to sweep.
async fn sweep(shared: &Arc<Shared>) -> Result<Ended, SnapshotError> {
    if shared.version.digits() == "0" {
        return Ok(Ended::AllDone);
    }
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
            () = ctx.cancel.cancelled() => return Ok(Ended::Cancelled),
        }
    }
    Ok(Ended::AllDone)
}

/// Takes the segments' acknowledged pages and stores their progress.
async fn store_updates(shared: &Shared, open_here: &mut usize) -> Result<(), SnapshotError> {
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
        ctx.state
            .save_segment(&ctx.table.name, progress)
            .await
            .map_err(|e| ctx.store_error(e))?;
        if update.finished {
            *open_here = open_here.saturating_sub(1);
            shared
                .counters
                .segments_done
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            metrics::counter!(names::SNAPSHOT_SEGMENTS_DONE, "table" => ctx.table.name.clone())
                .increment(1);
        }
    }
    Ok(())
}
