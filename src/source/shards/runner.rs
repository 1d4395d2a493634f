//! One stream's runner, for any [`ShardSource`]: periodic shard discovery,
//! lineage decisions, one reader task per ready shard, trim detection for
//! vanished shards. A DynamoDB stream serves one table; a Kinesis stream
//! may serve several (the lead table's policies apply to the stream).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::gate::{before_streaming, Gate};
use super::reader::{ReaderError, ReaderExit, ShardReader, ShardStatus};
use crate::backoff::Backoff;
use crate::config::{SnapshotMode, SourceSettings, StartPosition, TableConfig, TrimPolicy};
use crate::coordinator::{
    ready_shards, AckTracker, CheckpointStore, CheckpointUpdate, Claimed, Ownership,
    ShardCheckpoint, ShardKey, ShardNode, SinkSenders, SnapshotState,
};
use crate::dead_letter::DeadLetters;
use crate::model::SequenceNumber;
use crate::source::shard::{ShardInfo, ShardSource, ShardStart};
use crate::source::streams::StreamsApi;
use crate::source::SourceError;
use crate::stats::Stats;

/// Whether a table is read to its current end (for `--exit-when-caught-up`).
#[derive(Debug, Default)]
pub struct TableProgress {
    /// True when the last discovery found nothing new to start and every
    /// reader's last poll found no new records.
    pub caught_up: AtomicBool,
}

/// Everything a stream runner needs.
pub struct TableContext<S: ShardSource> {
    /// The stream to follow.
    pub source: Arc<S>,
    /// DynamoDB clients (table description and snapshot Scans).
    pub api: Arc<StreamsApi>,
    /// The (lead) table's configuration.
    pub table: Arc<TableConfig>,
    /// How snapshot rows of this stream's table are versioned.
    pub snapshot_versions: crate::source::snapshot::SnapshotVersions,
    /// Records of tables the stream carries but the pipeline does not
    /// follow are dead-lettered (else counted and skipped).
    pub dead_letter_other_tables: bool,
    /// Polling settings.
    pub settings: SourceSettings,
    /// The embedded checkpoint store (shards skipped on a first start).
    pub store: Arc<Mutex<CheckpointStore>>,
    /// Snapshot state: embedded, or in the lease table.
    pub snapshots: Arc<dyn SnapshotState>,
    /// Which ready shards this process reads; the shards' checkpoints.
    pub ownership: Arc<dyn Ownership>,
    /// Ordered-ack state.
    pub tracker: Arc<AckTracker>,
    /// Sink channels.
    pub sinks: SinkSenders,
    /// Dead letters.
    pub dead_letters: Arc<DeadLetters>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Caught-up flag.
    pub progress: Arc<TableProgress>,
    /// Shutdown.
    pub cancel: CancellationToken,
    /// Key attributes (for snapshot items).
    pub schema: crate::model::TableSchema,
    /// Progress log interval of snapshots when not on a terminal.
    pub progress_interval: std::time::Duration,
    /// `None` for `run`; for `snapshot`, whether this table was selected.
    pub snapshot_command: Option<bool>,
}

/// Why a table runner stopped the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A reader failed.
    #[error(transparent)]
    Reader(#[from] ReaderError),
    /// Shard discovery failed for good.
    #[error("table {table}: {source}")]
    Discovery {
        /// Source table.
        table: String,
        /// The failure.
        source: SourceError,
    },
    /// Checkpoints could not be read or written.
    #[error("table {table}: {message}")]
    Store {
        /// Source table.
        table: String,
        /// What failed.
        message: String,
    },
    /// A checkpointed shard vanished from the stream before it was finished.
    #[error(
        "table {table}: shard {shard} has a checkpoint ({checkpoint}) but is no longer in stream {stream}: its \
         remaining records expired (the stream's retention: 24 hours for DynamoDB Streams) or the stream was replaced. Changes are missing from the \
         sinks; set snapshot = \"when_needed\" on the table to re-snapshot it automatically (or run \
         `dynamo-cdc snapshot --table {table}`), or set on_trimmed = \"skip\""
    )]
    ShardVanished {
        /// Source table.
        table: String,
        /// The stream.
        stream: String,
        /// The shard.
        shard: String,
        /// Its checkpoint.
        checkpoint: String,
    },
    /// The table's snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] crate::source::snapshot::SnapshotError),
    /// Changes were trimmed while streaming and `snapshot = "when_needed"`:
    /// the engine restarts and the table is snapshotted again.
    #[error("table {table}: {reason}; a re-snapshot is recorded and runs at the next start")]
    SnapshotRequested {
        /// Source table.
        table: String,
        /// What was lost.
        reason: String,
    },
    /// A reader task panicked.
    #[error("table {table}: a shard reader failed unexpectedly: {message}")]
    Panicked {
        /// Source table.
        table: String,
        /// The panic.
        message: String,
    },
}

struct Running {
    status: Arc<ShardStatus>,
}

/// Follows one table's stream until shutdown or a fatal error.
pub async fn run_table<S: ShardSource>(ctx: TableContext<S>) -> Result<(), TableError> {
    let Gate::Stream { snapshotted } = before_streaming(&ctx).await? else {
        return Ok(());
    };
    let table = ctx.table.name.clone();
    let store_error = |message: String| TableError::Store {
        table: table.clone(),
        message,
    };
    let mut stored = load_checkpoints(&ctx).await.map_err(store_error)?;
    // A first start applies `start_position`; after a snapshot the recorded
    // positions apply instead.
    let fresh = stored.is_empty() && !snapshotted;
    // On a first start, `start_position` applies to the shards that exist
    // then; shards created later are read from their start.
    let mut initial: HashSet<String> = HashSet::new();
    let mut drained: HashMap<String, Option<SequenceNumber>> = HashMap::new();
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut readers: JoinSet<(String, Result<ReaderExit, ReaderError>)> = JoinSet::new();
    let mut first_discovery = true;
    let mut unclaimed: Vec<ShardNode> = Vec::new();
    let mut discovery_retry = Backoff::new(
        std::time::Duration::from_millis(200),
        ctx.settings.max_retry_backoff,
    );
    loop {
        ctx.progress.caught_up.store(false, Ordering::Relaxed);
        let listed = ctx.source.list_shards().await;
        let health = &ctx.stats.probes.health;
        health.source_reached(
            &table,
            listed.as_ref().map(|_| ()).map_err(ToString::to_string),
        );
        let shards = match listed {
            Ok(shards) => {
                discovery_retry.reset();
                Some(shards)
            }
            Err(err) if err.is_retryable() && !first_discovery => {
                tracing::warn!(table = %table, "shard discovery failed, will retry: {err}");
                None
            }
            Err(source) => {
                ctx.cancel.cancel();
                drain_readers(&mut readers).await;
                return Err(TableError::Discovery {
                    table: table.clone(),
                    source,
                });
            }
        };
        let discovered = shards.is_some();
        if !first_discovery {
            // Other workers (a lease table) may have finished parents since.
            let state = ctx
                .ownership
                .load(ctx.source.stream_id(), &table)
                .await
                .map_err(|err| store_error(err.to_string()))?;
            stored.extend(state.checkpoints);
        }
        if let Some(shards) = shards {
            if first_discovery {
                if fresh && ctx.table.start_position == StartPosition::Latest {
                    skip_closed_shards(&ctx, &shards, &mut stored)
                        .await
                        .map_err(store_error)?;
                }
                check_vanished(&ctx, &shards, &stored)?;
                if fresh {
                    initial = shards.iter().map(|s| s.id.clone()).collect();
                }
                first_discovery = false;
            }
            let nodes: Vec<ShardNode> = shards
                .iter()
                .map(|s| ShardNode {
                    id: s.id.clone(),
                    parents: s.parents.clone(),
                })
                .collect();
            let done =
                |id: &str| drained.contains_key(id) || stored.get(id).is_some_and(|c| c.finished);
            let ready: Vec<String> = ready_shards(&nodes, done, |id| running.contains_key(id))
                .into_iter()
                .map(str::to_owned)
                .collect();
            let ready_nodes: Vec<ShardNode> = nodes
                .iter()
                .filter(|n| ready.contains(&n.id))
                .cloned()
                .collect();
            let claimed = if ready_nodes.is_empty() {
                Vec::new()
            } else {
                ctx.ownership
                    .claim(ctx.source.stream_id(), &table, &ready_nodes)
                    .await
                    .map_err(|err| store_error(err.to_string()))?
            };
            // Ready shards another worker reads (or nobody yet): not caught up
            // while any is waiting for an owner here.
            unclaimed = ready_nodes
                .iter()
                .filter(|n| !claimed.iter().any(|c| c.shard == n.id))
                .cloned()
                .collect();
            for Claimed {
                shard,
                stop,
                checkpoint: owned_checkpoint,
            } in claimed
            {
                if let Some(owned) = owned_checkpoint {
                    stored.insert(shard.clone(), owned);
                }
                let info = shards.iter().find(|s| s.id == shard);
                let checkpoint = stored.get(&shard).and_then(|c| c.sequence.clone());
                let start_at = stored.get(&shard).and_then(|c| c.start_at.clone());
                let start = match (&checkpoint, start_at) {
                    (Some(sequence), _) => ShardStart::After(sequence.clone()),
                    (None, Some(sequence)) => ShardStart::At(sequence),
                    (None, None) if initial.contains(&shard) => first_start(&ctx.table, info),
                    (None, None) => ShardStart::TrimHorizon,
                };
                let after_parents = info.and_then(|i| {
                    i.parents
                        .iter()
                        .filter_map(|parent| {
                            drained
                                .get(parent)
                                .cloned()
                                .flatten()
                                .or_else(|| stored.get(parent).and_then(|c| c.sequence.clone()))
                        })
                        .max()
                });
                let key = ShardKey {
                    stream: Arc::clone(ctx.source.stream_id()),
                    shard: Arc::from(shard.as_str()),
                };
                ctx.tracker
                    .open_shard(key.clone(), Arc::from(table.as_str()), checkpoint);
                let status = Arc::new(ShardStatus::default());
                tracing::info!(table = %table, shard = %shard, start = ?start, "reading shard");
                let reader = ShardReader {
                    source: Arc::clone(&ctx.source),
                    table: Arc::clone(&ctx.table),
                    key,
                    start,
                    after_parents,
                    settings: ctx.settings.clone(),
                    tracker: Arc::clone(&ctx.tracker),
                    sinks: Arc::clone(&ctx.sinks),
                    dead_letters: Arc::clone(&ctx.dead_letters),
                    dead_letter_other_tables: ctx.dead_letter_other_tables,
                    stats: Arc::clone(&ctx.stats),
                    status: Arc::clone(&status),
                    cancel: stop,
                };
                running.insert(shard.clone(), Running { status });
                readers.spawn(async move { (shard, reader.run().await) });
            }
        }
        let mut rediscover_now = false;
        let discovery_wait = if discovered {
            ctx.settings.discovery_interval
        } else {
            discovery_retry.next_delay()
        };
        let next_discovery = tokio::time::Instant::now() + discovery_wait;
        while !rediscover_now {
            let all_caught_up = discovered
                && ctx.ownership.settled(ctx.source.stream_id(), &unclaimed)
                && running
                    .values()
                    .all(|r| r.status.caught_up.load(Ordering::Relaxed));
            ctx.progress
                .caught_up
                .store(all_caught_up, Ordering::Relaxed);
            tokio::select! {
                joined = readers.join_next(), if !readers.is_empty() => {
                    let Some(joined) = joined else { continue };
                    let (shard, result) = joined.map_err(|err| TableError::Panicked {
                        table: table.clone(),
                        message: err.to_string(),
                    })?;
                    running.remove(&shard);
                    match result {
                        Ok(ReaderExit::Drained(last)) => {
                            tracing::info!(table = %table, shard = %shard, "shard read to its end");
                            drained.insert(shard, last);
                            rediscover_now = true;
                        }
                        Ok(ReaderExit::Cancelled) if !ctx.cancel.is_cancelled() => {
                            // Ownership ended (a lost lease): forget what was not acknowledged.
                            tracing::warn!(table = %table, shard = %shard, "no longer the shard's owner; its reader stopped");
                            ctx.tracker.close_shard(&ShardKey {
                                stream: Arc::clone(ctx.source.stream_id()),
                                shard: Arc::from(shard.as_str()),
                            });
                            rediscover_now = true;
                        }
                        Ok(ReaderExit::Cancelled) => {}
                        Err(ReaderError::Trimmed { after, shard: lost_shard, .. })
                            if ctx.table.snapshot == SnapshotMode::WhenNeeded =>
                        {
                            let reason = format!(
                                "records of shard {lost_shard} after {after} were trimmed from the stream"
                            );
                            request_snapshot(&ctx, &reason).await.map_err(store_error)?;
                            ctx.cancel.cancel();
                            drain_readers(&mut readers).await;
                            return Err(TableError::SnapshotRequested { table: table.clone(), reason });
                        }
                        Err(err) => {
                            ctx.cancel.cancel();
                            drain_readers(&mut readers).await;
                            return Err(err.into());
                        }
                    }
                }
                () = tokio::time::sleep_until(next_discovery) => rediscover_now = true,
                () = ctx.ownership.changed() => rediscover_now = true,
                () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                () = ctx.cancel.cancelled() => {
                    drain_readers(&mut readers).await;
                    return Ok(());
                }
            }
        }
    }
}

/// Where a shard that existed at a first start begins, by `start_position`.
fn first_start(table: &TableConfig, info: Option<&ShardInfo>) -> ShardStart {
    match (table.start_position, table.start_timestamp_ms()) {
        (StartPosition::Latest, _) if info.is_some_and(|i| !i.closed) => ShardStart::Latest,
        (StartPosition::AtTimestamp, Some(ms)) => ShardStart::AtTimestamp(ms),
        _ => ShardStart::TrimHorizon,
    }
}

/// Records that the table must be snapshotted at the next start.
async fn request_snapshot<S: ShardSource>(
    ctx: &TableContext<S>,
    reason: &str,
) -> Result<(), String> {
    ctx.snapshots
        .request(&ctx.table.name, reason)
        .await
        .map_err(|e| e.to_string())
}

/// Waits for every reader to stop (they watch the cancellation token).
async fn drain_readers(readers: &mut JoinSet<(String, Result<ReaderExit, ReaderError>)>) {
    while let Some(joined) = readers.join_next().await {
        if let Ok((shard, Err(err))) = joined {
            tracing::debug!(shard = %shard, "reader stopped during shutdown: {err}");
        }
    }
}

async fn load_checkpoints<S: ShardSource>(
    ctx: &TableContext<S>,
) -> Result<HashMap<String, ShardCheckpoint>, String> {
    let state = ctx
        .ownership
        .load(ctx.source.stream_id(), &ctx.table.name)
        .await
        .map_err(|e| e.to_string())?;
    if !state.other_streams.is_empty() {
        tracing::warn!(
            table = %ctx.table.name,
            stream = %ctx.source.stream_id(),
            "the table has checkpoints for other streams ({}): the stream was replaced (disabled and re-enabled). \
             Changes between the old stream's last checkpoint and this stream's start may be missing; \
             snapshot = \"when_needed\" re-snapshots the table in that case",
            state.other_streams.join(", ")
        );
    }
    Ok(state.checkpoints)
}

/// With `start_position = "latest"` on a first start, shards already closed
/// hold only old changes: record them as finished so they are never read.
async fn skip_closed_shards<S: ShardSource>(
    ctx: &TableContext<S>,
    shards: &[ShardInfo],
    stored: &mut HashMap<String, ShardCheckpoint>,
) -> Result<(), String> {
    let updates: Vec<CheckpointUpdate> = shards
        .iter()
        .filter(|s| s.closed)
        .map(|s| CheckpointUpdate {
            key: ShardKey {
                stream: Arc::clone(ctx.source.stream_id()),
                shard: Arc::from(s.id.as_str()),
            },
            table: Arc::from(ctx.table.name.as_str()),
            sequence: None,
            finished: true,
        })
        .collect();
    for update in &updates {
        stored.insert(
            update.key.shard.to_string(),
            ShardCheckpoint {
                sequence: None,
                finished: true,
                start_at: None,
            },
        );
    }
    let store = Arc::clone(&ctx.store);
    tokio::task::spawn_blocking(move || {
        store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .save(&updates)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// A shard with an unfinished checkpoint that the stream no longer lists has
/// lost its unread records: apply the trim policy.
fn check_vanished<S: ShardSource>(
    ctx: &TableContext<S>,
    shards: &[ShardInfo],
    stored: &HashMap<String, ShardCheckpoint>,
) -> Result<(), TableError> {
    let listed: HashSet<&str> = shards.iter().map(|s| s.id.as_str()).collect();
    for (shard, checkpoint) in stored {
        if checkpoint.finished || listed.contains(shard.as_str()) {
            continue;
        }
        let position = checkpoint
            .sequence
            .as_ref()
            .map_or_else(|| "no records read".to_owned(), ToString::to_string);
        match ctx.table.on_trimmed {
            TrimPolicy::Halt => {
                return Err(TableError::ShardVanished {
                    table: ctx.table.name.clone(),
                    stream: ctx.source.stream_id().to_string(),
                    shard: shard.clone(),
                    checkpoint: position,
                })
            }
            TrimPolicy::Skip => tracing::error!(
                table = %ctx.table.name,
                shard = %shard,
                checkpoint = %position,
                "a checkpointed shard is no longer in the stream; its unread changes are lost (on_trimmed = skip)"
            ),
        }
    }
    Ok(())
}
