//! Exactly-once under a handover: two workers may briefly write the same
//! shard (the old owner stalled, the new one took the lease). Each batch
//! first refreshes the shards' committed checkpoints (so events at or below
//! them are skipped), then, inside its transaction, locks those checkpoint
//! rows and checks that no other writer committed further in between; if
//! one did, the transaction is rolled back and the batch retried, and the
//! retry skips what the other writer applied.

use std::collections::HashMap;

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Transaction};

use super::sql::checkpoint_table;
use crate::coordinator::ShardKey;
use crate::model::SequenceNumber;

/// Reads the committed checkpoints of `shards` into `cache` (keeping the
/// highest) and returns the cache's values for them.
pub(super) async fn refresh(
    client: &Client,
    schema: &str,
    shards: &[ShardKey],
    cache: &mut HashMap<ShardKey, SequenceNumber>,
) -> Result<HashMap<ShardKey, SequenceNumber>, tokio_postgres::Error> {
    if shards.is_empty() {
        return Ok(HashMap::new());
    }
    let keys: Vec<&ShardKey> = shards.iter().collect();
    for (key, sequence) in committed(client, schema, &keys).await? {
        let entry = cache.entry(key).or_insert_with(|| sequence.clone());
        if sequence > *entry {
            *entry = sequence;
        }
    }
    Ok(shards
        .iter()
        .filter_map(|k| Some((k.clone(), cache.get(k)?.clone())))
        .collect())
}

/// The committed checkpoints of `shards` (absent when none is stored).
async fn committed(
    client: &Client,
    schema: &str,
    shards: &[&ShardKey],
) -> Result<HashMap<ShardKey, SequenceNumber>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT sequence FROM {} WHERE stream_arn = $1 AND shard_id = $2",
        checkpoint_table(schema)
    );
    let statement = client
        .prepare_typed(&sql, &[Type::TEXT, Type::TEXT])
        .await?;
    let mut found = HashMap::new();
    for key in shards {
        if let Some(row) = client
            .query_opt(&statement, &[&&*key.stream, &&*key.shard])
            .await?
        {
            if let Ok(sequence) = SequenceNumber::parse(row.get::<_, &str>(0)) {
                found.insert((*key).clone(), sequence);
            }
        }
    }
    Ok(found)
}

/// Inside the batch's transaction: locks the checkpoint rows of `shards`
/// (creating empty ones so that the very first batches serialize too) and
/// returns a shard whose checkpoint another writer moved past `seen` since
/// the batch was filtered, if any.
pub(super) async fn lock_unchanged(
    tx: &Transaction<'_>,
    schema: &str,
    shards: &[&ShardKey],
    seen: &HashMap<ShardKey, SequenceNumber>,
) -> Result<Option<(ShardKey, String)>, tokio_postgres::Error> {
    let table = checkpoint_table(schema);
    let create = tx
        .prepare_typed(
            &format!(
                "INSERT INTO {table} (stream_arn, shard_id, sequence, sequence_number) \
                 VALUES ($1, $2, '0', 0) ON CONFLICT (stream_arn, shard_id) DO NOTHING"
            ),
            &[Type::TEXT, Type::TEXT],
        )
        .await?;
    let lock = tx
        .prepare_typed(
            &format!(
                "SELECT sequence FROM {table} WHERE stream_arn = $1 AND shard_id = $2 FOR UPDATE"
            ),
            &[Type::TEXT, Type::TEXT],
        )
        .await?;
    for key in shards {
        tx.execute(&create, &[&&*key.stream, &&*key.shard]).await?;
        let row = tx.query_one(&lock, &[&&*key.stream, &&*key.shard]).await?;
        let text: &str = row.get(0);
        let Ok(now) = SequenceNumber::parse(text) else {
            continue;
        };
        let before = seen.get(*key);
        if before.is_none_or(|before| now > *before) && now.digits() != "0" {
            return Ok(Some(((*key).clone(), text.to_owned())));
        }
    }
    Ok(None)
}
