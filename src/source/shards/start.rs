//! Where a table's reading starts: its stored checkpoints, the closed
//! shards a first start with `start_position = "latest"` skips, the trim
//! policy for checkpointed shards the stream no longer lists, and a first
//! start's position in each shard.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError};

use super::runner::{TableContext, TableError};
use crate::config::{StartPosition, TableConfig, TrimPolicy};
use crate::coordinator::{CheckpointUpdate, ShardCheckpoint, ShardKey};
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
pub(super) async fn skip_closed_shards<S: ShardSource>(
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
