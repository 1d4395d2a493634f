//! Writing one batch to PostgreSQL: the shards' new checkpoints, the rows
//! (inferred columns evolved first), one transaction for the rows and the
//! checkpoints, and after a data error the refused rows found and left out.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Transaction};

use super::rows::BuiltRows;
use super::{
    classify, copy, exactly_once, upsert, Failure, Latest, PostgresSink, RangeUpsert, Row,
};
use crate::coordinator::ShardKey;
use crate::model::SequenceNumber;
use crate::sink::postgres::sql::{checkpoint_upsert, PgTable};
use crate::sink::postgres::{PgWriteMethod, SqlDialect};
use crate::sink::refused::write_isolating_refused;
use crate::sink::{Batch, Rejected, SinkError};

/// The checkpoint each shard reaches with a batch.
type Advanced = HashMap<ShardKey, SequenceNumber>;

impl PostgresSink {
    /// With exactly-once, the shards' new checkpoints: the last change of
    /// each chunk that is not a snapshot's (empty without exactly-once).
    pub(super) fn advanced_checkpoints(&self, batch: &Batch) -> Advanced {
        let mut advanced = Advanced::new();
        if self.exactly_once.is_none() {
            return advanced;
        }
        for chunk in batch.chunks.iter().filter(|c| !c.is_snapshot()) {
            if let Some(last) = chunk.events.last() {
                let key = chunk.ack.shard().clone();
                let position = &last.position.sequence;
                let entry = advanced.entry(key).or_insert_with(|| position.clone());
                if position > entry {
                    *entry = position.clone();
                }
            }
        }
        advanced
    }

    /// The batch's rows. Values that need a new or wider column get it
    /// first and the rows are built again with it; a value is never
    /// written without the column it needs: if one still lacks it, the
    /// batch is retried.
    pub(super) async fn rows_with_columns<'a>(
        &mut self,
        batch: &'a Batch,
    ) -> Result<BuiltRows<'a>, SinkError> {
        let built = self.build_rows(batch);
        if built.unplanned.is_empty() {
            return Ok(built);
        }
        self.evolve_columns(batch, &built.unplanned).await?;
        let built = self.build_rows(batch);
        if !built.unplanned.is_empty() {
            return Err(SinkError::Transient {
                sink: self.name.clone(),
                message: format!(
                    "the inferred columns of {:?} still lack what the batch needs; retrying the batch",
                    built.unplanned
                ),
            });
        }
        Ok(built)
    }

    /// Writes the rows and the checkpoints in one transaction. A data error
    /// writes the rows again range by range to find the refused ones, which
    /// are returned with those refused while building; other failures stop
    /// the batch.
    pub(super) async fn write_rows(
        &mut self,
        built: BuiltRows<'_>,
        advanced: Advanced,
        seen: &Advanced,
    ) -> Result<Vec<Rejected>, SinkError> {
        let BuiltRows {
            latest,
            mut rejected,
            untyped,
            ..
        } = built;
        let name = self.name.clone();
        let tables = self.tables.clone();
        let checkpoint_sql = self.exactly_once.as_deref().map(checkpoint_upsert);
        if self.method == PgWriteMethod::Copy {
            self.ensure_stages().await?;
        }
        let exactly_once = self.exactly_once.clone();
        let write = RowsWrite {
            latest: &latest,
            tables: &tables,
            method: self.method,
            dialect: self.dialect,
            exactly_once: exactly_once.as_deref(),
            checkpoint_sql: checkpoint_sql.as_deref(),
            advanced: &advanced,
            seen,
        };
        let client = self.client().await?;
        let err = match write.in_one_transaction(client).await {
            Ok(Some((key, sequence))) => return Err(moved_meanwhile(name, &key, &sequence)),
            Ok(None) => {
                self.committed(advanced, untyped).await?;
                return Ok(rejected);
            }
            Err(err) => err,
        };
        match classify(&err) {
            Failure::Transient(message) => {
                if client.is_closed() {
                    self.client = None;
                }
                Err(SinkError::Transient {
                    sink: name,
                    message,
                })
            }
            Failure::Fatal(message) => Err(Failure::Fatal(message).into_sink_error(&name)),
            Failure::Data(_) => {
                rejected.extend(write.refused_rows(client, &name).await?);
                // The rows are settled: record the checkpoints.
                if write.checkpoints_alone(client, &name).await? {
                    self.note_checkpoints(advanced);
                }
                Ok(rejected)
            }
        }
    }

    /// After a committed batch: notes its checkpoints, purges tombstones
    /// when due and counts the values no typed column could hold.
    async fn committed(
        &mut self,
        advanced: Advanced,
        untyped: HashMap<Arc<str>, u64>,
    ) -> Result<(), SinkError> {
        self.note_checkpoints(advanced);
        self.purge_tombstones().await?;
        for (table, count) in untyped {
            metrics::counter!(crate::metric_names::SCHEMA_UNTYPED_VALUES,
                "sink" => self.name.clone(), "table" => table.to_string())
            .increment(count);
        }
        Ok(())
    }

    /// Keeps the highest committed checkpoint of each shard.
    fn note_checkpoints(&mut self, advanced: Advanced) {
        for (key, sequence) in advanced {
            let entry = self
                .checkpoints
                .entry(key)
                .or_insert_with(|| sequence.clone());
            if sequence > *entry {
                *entry = sequence;
            }
        }
    }
}

/// One batch's rows and checkpoints, ready for the transaction.
struct RowsWrite<'a, 'b> {
    /// Per table, the newest change per key.
    latest: &'a HashMap<Arc<str>, Latest<'b>>,
    tables: &'a HashMap<Arc<str>, PgTable>,
    method: PgWriteMethod,
    dialect: SqlDialect,
    /// With exactly-once, the schema of the checkpoint table.
    exactly_once: Option<&'a str>,
    checkpoint_sql: Option<&'a str>,
    advanced: &'a Advanced,
    /// The checkpoints read before the batch was built.
    seen: &'a Advanced,
}

impl RowsWrite<'_, '_> {
    /// Upserts every table's rows and the checkpoints, then commits; with
    /// exactly-once, first locks the shards' checkpoint rows and gives up
    /// (returning the shard and its checkpoint) when another writer moved one.
    async fn in_one_transaction(
        &self,
        client: &mut Client,
    ) -> Result<Option<(ShardKey, String)>, tokio_postgres::Error> {
        let tx = client.transaction().await?;
        if let Some(schema) = self.exactly_once {
            let keys: Vec<&ShardKey> = self.advanced.keys().collect();
            if let Some(moved) = exactly_once::lock_unchanged(&tx, schema, &keys, self.seen).await?
            {
                return Ok(Some(moved));
            }
        }
        for (source, rows) in self.latest {
            if let Some(table) = self.tables.get(source) {
                let rows: Vec<&Row> = rows.values().map(|(_, row, _)| row).collect();
                match self.method {
                    PgWriteMethod::Copy => copy::copy_upsert(&tx, table, &rows).await?,
                    PgWriteMethod::Insert => upsert(&tx, table, &rows, self.dialect).await?,
                }
            }
        }
        if let Some(sql) = self.checkpoint_sql {
            upsert_checkpoints(&tx, sql, self.advanced).await?;
        }
        tx.commit().await.map(|()| None)
    }

    /// Finds the rows PostgreSQL refuses: each table's rows written again in
    /// ranges, each in its own transaction, bisected down to the bad rows.
    async fn refused_rows(
        &self,
        client: &mut Client,
        sink: &str,
    ) -> Result<Vec<Rejected>, SinkError> {
        let mut rejected = Vec::new();
        for (source, rows) in self.latest {
            let Some(table) = self.tables.get(source) else {
                continue;
            };
            let entries: Vec<_> = rows.values().collect();
            let mut ranges = RangeUpsert {
                client: &mut *client,
                table,
                rows: entries.iter().map(|(_, row, _)| row).collect(),
                dialect: self.dialect,
            };
            let refused = write_isolating_refused(entries.len(), &mut ranges)
                .await
                .map_err(|failure| failure.into_sink_error(sink))?;
            rejected.extend(refused.into_iter().map(|row| {
                let ((chunk, event), _, _) = entries[row.index];
                Rejected {
                    chunk: *chunk,
                    event: *event,
                    reason: format!("PostgreSQL rejected the row: {}", row.reason),
                }
            }));
        }
        Ok(rejected)
    }

    /// With exactly-once, records the shards' checkpoints in a transaction
    /// of their own (after the refused rows were found); true when it did.
    async fn checkpoints_alone(&self, client: &mut Client, sink: &str) -> Result<bool, SinkError> {
        let Some(sql) = self.checkpoint_sql else {
            return Ok(false);
        };
        let transient = |e: tokio_postgres::Error| SinkError::Transient {
            sink: sink.to_owned(),
            message: crate::error_text::with_causes(&e),
        };
        let tx = client.transaction().await.map_err(transient)?;
        upsert_checkpoints(&tx, sql, self.advanced)
            .await
            .map_err(transient)?;
        tx.commit().await.map_err(transient)?;
        Ok(true)
    }
}

/// Upserts the shards' checkpoints in the open transaction.
async fn upsert_checkpoints(
    tx: &Transaction<'_>,
    sql: &str,
    advanced: &Advanced,
) -> Result<(), tokio_postgres::Error> {
    let statement = tx
        .prepare_typed(sql, &[Type::TEXT, Type::TEXT, Type::TEXT])
        .await?;
    for (key, sequence) in advanced {
        tx.execute(
            &statement,
            &[&&*key.stream, &&*key.shard, &sequence.as_str()],
        )
        .await?;
    }
    Ok(())
}

/// The batch's failure when another writer moved a shard's checkpoint
/// since the batch was built.
fn moved_meanwhile(sink: String, key: &ShardKey, sequence: &str) -> SinkError {
    SinkError::Transient {
        sink,
        message: format!(
            "another writer committed shard {} up to {sequence} meanwhile (a lease handover); \
             retrying the batch without what it applied",
            key.shard
        ),
    }
}
