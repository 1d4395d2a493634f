//! Where a table's reading starts: its stored checkpoints, the closed
//! shards a first start with `start_position = "latest"` skips, the trim
//! policy for checkpointed shards the stream no longer lists, and a first
//! start's position in each shard.

use std::collections::{HashMap, HashSet};

use super::runner::{TableContext, TableError};
use crate::config::{StartPosition, TableConfig, TrimPolicy};
use crate::coordinator::{OwnershipError, ShardCheckpoint, ShardNode};
use crate::source::shard::{ShardInfo, ShardSource, ShardStart};

/// Where a shard that existed at a first start begins, by `start_position`.
pub(super) fn first_start(table: &TableConfig, info: Option<&ShardInfo>) -> ShardStart {
    match (table.start_position, table.start_timestamp_ms()) {
        (StartPosition::Latest, _) if info.is_some_and(|i| !i.closed) => ShardStart::Latest,
        (StartPosition::AtTimestamp, Some(ms)) => ShardStart::AtTimestamp(ms),
        _ => ShardStart::TrimHorizon,
    }
}

/// The table's stored checkpoints of this stream; warns when other
/// streams of the table have checkpoints (the stream was replaced).
pub(super) async fn load_checkpoints<S: ShardSource>(
    ctx: &TableContext<S>,
) -> Result<HashMap<String, ShardCheckpoint>, OwnershipError> {
    let state = ctx
        .ownership
        .load(ctx.source.stream_id(), &ctx.table.name)
        .await?;
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
/// hold only old changes: record them as finished (through the ownership
/// seam, so that every worker sees it) so they are never read.
pub(super) async fn skip_closed_shards<S: ShardSource>(
    ctx: &TableContext<S>,
    shards: &[ShardInfo],
    stored: &mut HashMap<String, ShardCheckpoint>,
) -> Result<(), OwnershipError> {
    let closed: Vec<ShardNode> = shards
        .iter()
        .filter(|s| s.closed)
        .map(|s| ShardNode {
            id: s.id.clone(),
            parents: s.parents.clone(),
        })
        .collect();
    ctx.ownership
        .skip_closed(ctx.source.stream_id(), &ctx.table.name, &closed)
        .await?;
    for shard in closed {
        stored.insert(
            shard.id,
            ShardCheckpoint {
                sequence: None,
                finished: true,
                start_at: None,
            },
        );
    }
    Ok(())
}

/// A shard with an unfinished checkpoint that the stream no longer lists has
/// lost its unread records: apply the trim policy.
pub(super) fn check_vanished<S: ShardSource>(
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
