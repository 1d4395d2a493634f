//! One stream's runner, for any [`ShardSource`]: periodic shard discovery,
//! lineage decisions, one reader task per ready shard, trim detection for
//! vanished shards. A DynamoDB stream serves one table; a Kinesis stream
//! may serve several (the lead table's policies apply to the stream).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::gate::{before_streaming, Gate};
use super::reader::{ReaderError, ReaderExit, ShardReader, ShardStatus};
use super::start::{check_vanished, first_start, load_checkpoints, skip_closed_shards};
use crate::backoff::Backoff;
use crate::config::{SnapshotMode, SourceSettings, StartPosition, TableConfig};
use crate::coordinator::{
    ready_shards, AckTracker, Claimed, Ownership, OwnershipError, ShardCheckpoint, ShardKey,
    ShardNode, SinkSenders, SnapshotState,
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
    /// Checkpoints, leases or snapshot state could not be read or written.
    #[error("table {table}: {source}")]
    Ownership {
        /// Source table.
        table: String,
        /// What failed (names the store or lease table and the call).
        #[source]
        source: OwnershipError,
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

/// What a reader task returns: its shard and how it stopped.
type ReaderOutcome = (String, Result<ReaderExit, ReaderError>);

/// What the runner does after waiting on its readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// List the shards again.
    Discover,
    /// Shutdown came and every reader stopped.
    Shutdown,
}

/// Follows one table's stream until shutdown or a fatal error.
pub async fn run_table<S: ShardSource>(ctx: TableContext<S>) -> Result<(), TableError> {
    let Gate::Stream { snapshotted } = before_streaming(&ctx).await? else {
        return Ok(());
    };
    let stored = load_checkpoints(&ctx)
        .await
        .map_err(|err| ownership_error(&ctx, err))?;
    let mut run = TableRun::new(&ctx, stored, snapshotted);
    loop {
        ctx.progress.caught_up.store(false, Ordering::Relaxed);
        let shards = run.discover().await?;
        if !run.first_discovery {
            run.reload_checkpoints().await?;
        }
        if let Some(shards) = &shards {
            if run.first_discovery {
                run.settle_first_start(shards).await?;
            }
            for claim in run.claim_ready(shards).await? {
                run.start_reader(shards, claim);
            }
        }
        if run.wait_for_readers(shards.is_some()).await? == Next::Shutdown {
            return Ok(());
        }
    }
}

/// A checkpoint failure of the context's table.
/// A failure of the ownership seam, with the table it concerns.
fn ownership_error<S: ShardSource>(ctx: &TableContext<S>, source: OwnershipError) -> TableError {
    TableError::Ownership {
        table: ctx.table.name.clone(),
        source,
    }
}

/// One stream's reading state, kept across discoveries.
struct TableRun<'a, S: ShardSource> {
    ctx: &'a TableContext<S>,
    /// Checkpoints as loaded, claimed or skipped.
    stored: HashMap<String, ShardCheckpoint>,
    /// A first start: `start_position` applies (after a snapshot the
    /// recorded positions apply instead).
    fresh: bool,
    /// On a first start, the shards that existed then: `start_position`
    /// applies to them; shards created later are read from their start.
    initial: HashSet<String>,
    /// Shards read to their end here, with their last position.
    drained: HashMap<String, Option<SequenceNumber>>,
    running: HashMap<String, Running>,
    readers: JoinSet<ReaderOutcome>,
    first_discovery: bool,
    /// Ready shards another worker reads (or nobody yet).
    unclaimed: Vec<ShardNode>,
    discovery_retry: Backoff,
}

impl<'a, S: ShardSource> TableRun<'a, S> {
    fn new(
        ctx: &'a TableContext<S>,
        stored: HashMap<String, ShardCheckpoint>,
        snapshotted: bool,
    ) -> Self {
        let fresh = stored.is_empty() && !snapshotted;
        Self {
            ctx,
            stored,
            fresh,
            initial: HashSet::new(),
            drained: HashMap::new(),
            running: HashMap::new(),
            readers: JoinSet::new(),
            first_discovery: true,
            unclaimed: Vec::new(),
            discovery_retry: Backoff::new(
                std::time::Duration::from_millis(200),
                ctx.settings.max_retry_backoff,
            ),
        }
    }

    /// Lists the stream's shards and reports the source's health; `None`
    /// when a later listing failed and will be retried. A failure of the
    /// first listing, or one not worth retrying, stops every reader.
    async fn discover(&mut self) -> Result<Option<Vec<ShardInfo>>, TableError> {
        let ctx = self.ctx;
        let table = &ctx.table.name;
        let listed = ctx.source.list_shards().await;
        ctx.stats.probes.health.source_reached(
            table,
            listed.as_ref().map(|_| ()).map_err(ToString::to_string),
        );
        match listed {
            Ok(shards) => {
                self.discovery_retry.reset();
                Ok(Some(shards))
            }
            Err(err) if err.is_retryable() && !self.first_discovery => {
                tracing::warn!(table = %table, "shard discovery failed, will retry: {err}");
                Ok(None)
            }
            Err(source) => {
                ctx.cancel.cancel();
                drain_readers(&mut self.readers).await;
                Err(TableError::Discovery {
                    table: table.clone(),
                    source,
                })
            }
        }
    }

    /// Merges the stored checkpoints again: other workers (a lease table)
    /// may have finished parents since.
    async fn reload_checkpoints(&mut self) -> Result<(), TableError> {
        let ctx = self.ctx;
        let state = ctx
            .ownership
            .load(ctx.source.stream_id(), &ctx.table.name)
            .await
            .map_err(|err| ownership_error(ctx, err))?;
        self.stored.extend(state.checkpoints);
        Ok(())
    }

    /// At the first listing: skips closed shards for `start_position =
    /// "latest"`, applies the trim policy to vanished shards and notes the
    /// shards `start_position` applies to.
    async fn settle_first_start(&mut self, shards: &[ShardInfo]) -> Result<(), TableError> {
        let ctx = self.ctx;
        if self.fresh && ctx.table.start_position == StartPosition::Latest {
            skip_closed_shards(ctx, shards, &mut self.stored)
                .await
                .map_err(|err| ownership_error(ctx, err))?;
        }
        check_vanished(ctx, shards, &self.stored)?;
        if self.fresh {
            self.initial = shards.iter().map(|s| s.id.clone()).collect();
        }
        self.first_discovery = false;
        Ok(())
    }

    /// Claims the shards whose parents are done and that no reader here
    /// reads; the ready shards not claimed are kept as `unclaimed`.
    async fn claim_ready(&mut self, shards: &[ShardInfo]) -> Result<Vec<Claimed>, TableError> {
        let ctx = self.ctx;
        let nodes: Vec<ShardNode> = shards
            .iter()
            .map(|s| ShardNode {
                id: s.id.clone(),
                parents: s.parents.clone(),
            })
            .collect();
        let done = |id: &str| {
            self.drained.contains_key(id) || self.stored.get(id).is_some_and(|c| c.finished)
        };
        let ready: Vec<String> = ready_shards(&nodes, done, |id| self.running.contains_key(id))
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
                .claim(ctx.source.stream_id(), &ctx.table.name, &ready_nodes)
                .await
                .map_err(|err| ownership_error(ctx, err))?
        };
        // Not caught up while any ready shard is waiting for an owner here.
        self.unclaimed = ready_nodes
            .iter()
            .filter(|n| !claimed.iter().any(|c| c.shard == n.id))
            .cloned()
            .collect();
        Ok(claimed)
    }

    /// Opens a claimed shard in the ack tracker and spawns its reader.
    fn start_reader(&mut self, shards: &[ShardInfo], claim: Claimed) {
        let ctx = self.ctx;
        let Claimed {
            shard,
            stop,
            checkpoint: owned_checkpoint,
        } = claim;
        if let Some(owned) = owned_checkpoint {
            self.stored.insert(shard.clone(), owned);
        }
        let info = shards.iter().find(|s| s.id == shard);
        let checkpoint = self.stored.get(&shard).and_then(|c| c.sequence.clone());
        let start = self.shard_start(&shard, info);
        let after_parents = info.and_then(|i| self.parents_end(i));
        let key = ShardKey {
            stream: Arc::clone(ctx.source.stream_id()),
            shard: Arc::from(shard.as_str()),
        };
        ctx.tracker
            .open_shard(key.clone(), Arc::from(ctx.table.name.as_str()), checkpoint);
        let status = Arc::new(ShardStatus::default());
        tracing::info!(table = %ctx.table.name, shard = %shard, start = ?start, "reading shard");
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
        self.running.insert(shard.clone(), Running { status });
        self.readers
            .spawn(async move { (shard, reader.run().await) });
    }

    /// Where a claimed shard's reader begins: after its checkpoint, at its
    /// recorded snapshot position, by `start_position` for a shard of a
    /// first start, else at the trim horizon.
    fn shard_start(&self, shard: &str, info: Option<&ShardInfo>) -> ShardStart {
        let checkpoint = self.stored.get(shard).and_then(|c| c.sequence.clone());
        let start_at = self.stored.get(shard).and_then(|c| c.start_at.clone());
        match (checkpoint, start_at) {
            (Some(sequence), _) => ShardStart::After(sequence),
            (None, Some(sequence)) => ShardStart::At(sequence),
            (None, None) if self.initial.contains(shard) => first_start(&self.ctx.table, info),
            (None, None) => ShardStart::TrimHorizon,
        }
    }

    /// The highest last position of the shard's parents, drained here or
    /// checkpointed.
    fn parents_end(&self, info: &ShardInfo) -> Option<SequenceNumber> {
        info.parents
            .iter()
            .filter_map(|parent| {
                self.drained
                    .get(parent)
                    .cloned()
                    .flatten()
                    .or_else(|| self.stored.get(parent).and_then(|c| c.sequence.clone()))
            })
            .max()
    }

    /// Keeps the caught-up flag current and handles stopped readers until
    /// the next discovery is due (at once when a shard ended or ownership
    /// changed), or shutdown.
    async fn wait_for_readers(&mut self, discovered: bool) -> Result<Next, TableError> {
        let ctx = self.ctx;
        let discovery_wait = if discovered {
            ctx.settings.discovery_interval
        } else {
            self.discovery_retry.next_delay()
        };
        let next_discovery = tokio::time::Instant::now() + discovery_wait;
        let mut rediscover_now = false;
        while !rediscover_now {
            let all_caught_up = discovered
                && ctx
                    .ownership
                    .settled(ctx.source.stream_id(), &self.unclaimed)
                && self
                    .running
                    .values()
                    .all(|r| r.status.caught_up.load(Ordering::Relaxed));
            ctx.progress
                .caught_up
                .store(all_caught_up, Ordering::Relaxed);
            tokio::select! {
                joined = self.readers.join_next(), if !self.readers.is_empty() => {
                    let Some(joined) = joined else { continue };
                    let (shard, result) = joined.map_err(|err| TableError::Panicked {
                        table: ctx.table.name.clone(),
                        message: err.to_string(),
                    })?;
                    rediscover_now = self.reader_stopped(shard, result).await?;
                }
                () = tokio::time::sleep_until(next_discovery) => rediscover_now = true,
                () = ctx.ownership.changed() => rediscover_now = true,
                () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                () = ctx.cancel.cancelled() => {
                    drain_readers(&mut self.readers).await;
                    return Ok(Next::Shutdown);
                }
            }
        }
        Ok(Next::Discover)
    }

    /// Handles a reader's end; true when the shards should be listed again
    /// now. A trimmed shard under `snapshot = "when_needed"` records a
    /// re-snapshot; it and any other reader failure stop every reader.
    async fn reader_stopped(
        &mut self,
        shard: String,
        result: Result<ReaderExit, ReaderError>,
    ) -> Result<bool, TableError> {
        let ctx = self.ctx;
        let table = &ctx.table.name;
        self.running.remove(&shard);
        match result {
            Ok(ReaderExit::Drained(last)) => {
                tracing::info!(table = %table, shard = %shard, "shard read to its end");
                self.drained.insert(shard, last);
                Ok(true)
            }
            Ok(ReaderExit::Cancelled) if !ctx.cancel.is_cancelled() => {
                // Ownership ended (a lost lease): forget what was not acknowledged.
                tracing::warn!(table = %table, shard = %shard, "no longer the shard's owner; its reader stopped");
                ctx.tracker.close_shard(&ShardKey {
                    stream: Arc::clone(ctx.source.stream_id()),
                    shard: Arc::from(shard.as_str()),
                });
                Ok(true)
            }
            Ok(ReaderExit::Cancelled) => Ok(false),
            Err(ReaderError::Trimmed {
                after,
                shard: lost_shard,
                ..
            }) if ctx.table.snapshot == SnapshotMode::WhenNeeded => {
                let reason = format!(
                    "records of shard {lost_shard} after {after} were trimmed from the stream"
                );
                request_snapshot(ctx, &reason)
                    .await
                    .map_err(|err| ownership_error(ctx, err))?;
                ctx.cancel.cancel();
                drain_readers(&mut self.readers).await;
                Err(TableError::SnapshotRequested {
                    table: table.clone(),
                    reason,
                })
            }
            Err(err) => {
                ctx.cancel.cancel();
                drain_readers(&mut self.readers).await;
                Err(err.into())
            }
        }
    }
}

/// Records that the table must be snapshotted at the next start.
async fn request_snapshot<S: ShardSource>(
    ctx: &TableContext<S>,
    reason: &str,
) -> Result<(), OwnershipError> {
    ctx.snapshots.request(&ctx.table.name, reason).await
}

/// Waits for every reader to stop (they watch the cancellation token).
async fn drain_readers(readers: &mut JoinSet<ReaderOutcome>) {
    while let Some(joined) = readers.join_next().await {
        if let Ok((shard, Err(err))) = joined {
            tracing::debug!(shard = %shard, "reader stopped during shutdown: {err}");
        }
    }
}
