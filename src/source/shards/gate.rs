//! Before a table streams: decide whether it needs a snapshot (its first
//! run, changes lost to trimming or a replaced stream, an unfinished
//! snapshot, or `dynamo-cdc snapshot`) and run it.

use std::collections::HashSet;
use std::sync::Arc;

use super::runner::{TableContext, TableError};
use crate::coordinator::GateState;
use crate::source::shard::{PositionProbe, ShardSource};
use crate::source::snapshot::{self, Decision, Facts, Outcome, SnapshotContext};

/// What the table runner does after the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Stream from the checkpoints (and recorded positions); `snapshotted`
    /// when the table has a finished snapshot, whose positions then apply
    /// instead of `start_position`.
    Stream {
        /// The table has a finished snapshot.
        snapshotted: bool,
    },
    /// Stop: shutdown came, or the run only snapshots.
    Stop,
}

/// Why changes after the table's checkpoints are lost, if they are.
fn lost_changes<S: ShardSource>(
    ctx: &TableContext<S>,
    stored: &std::collections::HashMap<String, crate::coordinator::ShardCheckpoint>,
    other_streams: &[String],
    listed: &HashSet<String>,
) -> Option<String> {
    let mut vanished: Vec<&String> = stored
        .iter()
        .filter(|(id, c)| !c.finished && !listed.contains(*id))
        .map(|(id, _)| id)
        .collect();
    vanished.sort();
    if !vanished.is_empty() {
        return Some(format!(
            "checkpointed shard(s) {} are no longer in stream {}: their unread changes expired",
            vanished
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            ctx.source.stream_id()
        ));
    }
    if stored.is_empty() && !other_streams.is_empty() {
        return Some(format!(
            "the table's stream was replaced: checkpoints exist only for {}, so the changes between the streams are lost",
            other_streams.join(", ")
        ));
    }
    None
}

/// Runs the table's snapshot when one is due.
pub async fn before_streaming<S: ShardSource>(ctx: &TableContext<S>) -> Result<Gate, TableError> {
    if ctx.snapshot_command == Some(false) {
        return Ok(Gate::Stop);
    }
    let (decision, snapshotted) = decide_snapshot(ctx).await?;
    let snapshot_ctx = snapshot_context(ctx);
    let outcome = match decision {
        Decision::Skip => {
            return Ok(if ctx.snapshot_command.is_some() {
                Gate::Stop
            } else {
                Gate::Stream { snapshotted }
            })
        }
        Decision::Resume => snapshot::resume(&snapshot_ctx).await,
        Decision::Start {
            clear_checkpoints,
            reason,
        } => {
            if clear_checkpoints {
                tracing::warn!(table = %ctx.table.name, "re-snapshotting the table: {reason}");
            }
            snapshot::begin(&snapshot_ctx, clear_checkpoints, &reason).await
        }
    }
    .map_err(TableError::Snapshot)?;
    Ok(match outcome {
        Outcome::Finished if ctx.snapshot_command.is_none() => Gate::Stream { snapshotted: true },
        Outcome::Finished | Outcome::Cancelled => Gate::Stop,
    })
}

/// Gathers the facts (the stored gate state, the shards listed now) and
/// decides whether the table needs a snapshot; also says whether it has a
/// finished one.
async fn decide_snapshot<S: ShardSource>(
    ctx: &TableContext<S>,
) -> Result<(Decision, bool), TableError> {
    let table = &ctx.table.name;
    let stream_id = Arc::clone(ctx.source.stream_id());
    let GateState {
        checkpoints: stored,
        streams,
        record,
    } = ctx
        .snapshots
        .gate_state(table, &stream_id)
        .await
        .map_err(|source| TableError::Ownership {
            table: table.clone(),
            source,
        })?;
    let shards = ctx
        .source
        .list_shards()
        .await
        .map_err(|source| TableError::Discovery {
            table: table.clone(),
            source,
        })?;
    let listed: HashSet<String> = shards.into_iter().map(|s| s.id).collect();
    let other_streams: Vec<String> = streams
        .iter()
        .filter(|s| s.as_str() != &*stream_id)
        .cloned()
        .collect();
    let lost = lost_changes(ctx, &stored, &other_streams, &listed);
    let snapshotted = record
        .as_ref()
        .is_some_and(|r| r.phase == crate::coordinator::SnapshotPhase::Done);
    let decision = snapshot::decide(&Facts {
        mode: ctx.table.snapshot,
        forced: ctx.snapshot_command == Some(true),
        record: record.as_ref(),
        stream_arn: &stream_id,
        has_checkpoints: !streams.is_empty(),
        lost,
    });
    Ok((decision, snapshotted))
}

/// What the table's snapshot works with, taken from the runner's context.
fn snapshot_context<S: ShardSource>(ctx: &TableContext<S>) -> SnapshotContext {
    SnapshotContext {
        api: Arc::clone(&ctx.api),
        table: Arc::clone(&ctx.table),
        schema: ctx.schema.clone(),
        stream_arn: Arc::clone(ctx.source.stream_id()),
        probe: Arc::clone(&ctx.source) as Arc<dyn PositionProbe>,
        versions: ctx.snapshot_versions,
        state: Arc::clone(&ctx.snapshots),
        sinks: Arc::clone(&ctx.sinks),
        dead_letters: Arc::clone(&ctx.dead_letters),
        stats: Arc::clone(&ctx.stats),
        cancel: ctx.cancel.clone(),
        progress_interval: ctx.progress_interval,
    }
}
