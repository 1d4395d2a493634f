//! Writes batches into PostgreSQL: per target table, multi-row versioned
//! upserts inside one transaction per batch.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use super::auto_columns::PgAutoColumns;
use super::copy;
use super::cratedb;
use super::exactly_once;
use super::sql::{
    checkpoint_table, create_checkpoint_table, create_statements, upsert_statement, PgTable,
};
use super::tls::Connector;
use super::typed::Param;
use super::{PgWriteMethod, PostgresSinkConfig, SqlDialect};
use crate::coordinator::ShardKey;
use crate::model::{ChangeEvent, SequenceNumber, TableSchema};
use crate::sink::refused::{RangeWriter, Refusal};
use crate::sink::{Batch, Rejected, SinkError, SinkWriter};

/// Rows per INSERT statement (PostgreSQL allows 65,535 parameters).
const ROWS_PER_STATEMENT: usize = 1000;

mod batch;
mod evolve;
mod rows;
mod upkeep;

/// The `postgres` sink.
pub struct PostgresSink {
    name: String,
    connector: Connector,
    client: Option<Client>,
    tables: HashMap<Arc<str>, PgTable>,
    /// With exactly-once: the schema holding the checkpoint table, and the
    /// checkpoints committed so far.
    exactly_once: Option<String>,
    checkpoints: HashMap<ShardKey, SequenceNumber>,
    dialect: SqlDialect,
    method: PgWriteMethod,
    /// Whether this connection has its staging tables (`copy` method).
    staged: bool,
    purge_after: Option<std::time::Duration>,
    last_purge: std::time::Instant,
    /// Inferred columns (`columns = "auto"`).
    auto: Option<PgAutoColumns>,
}

/// How often tombstones are purged when purging is configured.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// How to handle a failed write.
enum Failure {
    Transient(String),
    Data(String),
    Fatal(String),
}

impl Failure {
    /// The sink error a failure stops the batch with (a data failure here
    /// means the batch's bad rows could not be told apart: fatal).
    fn into_sink_error(self, sink: &str) -> SinkError {
        let sink = sink.to_owned();
        match self {
            Failure::Transient(message) => SinkError::Transient { sink, message },
            Failure::Data(message) | Failure::Fatal(message) => SinkError::Fatal { sink, message },
        }
    }
}

fn classify(err: &tokio_postgres::Error) -> Failure {
    let message = crate::error_text::with_causes(err);
    let Some(db) = err.as_db_error() else {
        // I/O errors and a closed connection: reconnect and retry.
        return Failure::Transient(message);
    };
    let code = db.code();
    let class = &code.code()[..2];
    if class == "08"
        || class == "53"
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
    {
        Failure::Transient(message)
    } else if class == "22" || class == "23" {
        // Data exceptions and integrity violations: one row is bad.
        Failure::Data(message)
    } else {
        Failure::Fatal(message)
    }
}

impl PostgresSink {
    /// Connects and creates (with `create_table`) or checks the target tables.
    pub async fn connect(
        name: &str,
        config: &PostgresSinkConfig,
        schemas: &[TableSchema],
    ) -> Result<Self, SinkError> {
        let mut sink = Self {
            name: name.to_owned(),
            connector: Connector::new(config.url.expose(), config.ca_file.as_deref())
                .map_err(|message| fatal(name, message))?,
            client: None,
            tables: HashMap::new(),
            exactly_once: config.exactly_once().then(|| config.schema.clone()),
            dialect: config.dialect,
            method: config.write_method(),
            staged: false,
            purge_after: config.purge_tombstones_after,
            last_purge: std::time::Instant::now(),
            checkpoints: HashMap::new(),
            auto: None,
        };
        let mut tables = HashMap::new();
        let client = sink.client().await?;
        for schema in schemas {
            let table = open_table(client, name, config, schema).await?;
            tables.insert(Arc::clone(&schema.name), table);
        }
        sink.tables = tables;
        if config.columns.is_auto() {
            sink.open_auto_columns(&config.schema).await?;
        }
        if config.exactly_once() {
            let client = sink.client().await?;
            open_checkpoint_table(client, name, config).await?;
        }
        Ok(sink)
    }

    /// With exactly-once: the committed checkpoints of `shards`, freshly read
    /// (another worker may have moved them), against which the batch is filtered.
    async fn refresh_checkpoints(
        &mut self,
        shards: &[ShardKey],
    ) -> Result<HashMap<ShardKey, SequenceNumber>, SinkError> {
        let Some(schema) = self.exactly_once.clone() else {
            return Ok(HashMap::new());
        };
        let name = self.name.clone();
        let mut cache = std::mem::take(&mut self.checkpoints);
        let fresh = match self.client().await {
            Ok(client) => exactly_once::refresh(client, &schema, shards, &mut cache)
                .await
                .map_err(|err| SinkError::Transient {
                    sink: name,
                    message: crate::error_text::with_causes(&err),
                }),
            Err(err) => Err(err),
        };
        self.checkpoints = cache;
        fresh
    }

    /// The connection, opened again when it was lost.
    async fn client(&mut self) -> Result<&mut Client, SinkError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let (client, connection) =
                self.connector
                    .connect()
                    .await
                    .map_err(|e| SinkError::Transient {
                        sink: self.name.clone(),
                        message: format!(
                            "cannot connect to PostgreSQL{}: {}",
                            if self.connector.uses_tls() {
                                " (TLS)"
                            } else {
                                ""
                            },
                            crate::error_text::with_causes(&e)
                        ),
                    })?;
            let sink = self.name.clone();
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::warn!(sink = %sink, "PostgreSQL connection ended: {err}");
                }
            });
            if self.dialect == SqlDialect::Postgres {
                // A writer that stalls inside a transaction (a paused
                // process whose lease another worker took) must not hold
                // the checkpoint rows' locks for ever: the server ends its
                // session, and the new owner's batch goes on.
                client
                    .batch_execute(IDLE_IN_TRANSACTION_LIMIT)
                    .await
                    .map_err(|e| SinkError::Transient {
                        sink: self.name.clone(),
                        message: crate::error_text::with_causes(&e),
                    })?;
            }
            self.client = Some(client);
            self.staged = false;
        }
        self.client.as_mut().ok_or_else(|| SinkError::Transient {
            sink: self.name.clone(),
            message: "no connection".into(),
        })
    }
}

/// A failure of the sink `sink` that retrying cannot fix.
fn fatal(sink: &str, message: String) -> SinkError {
    SinkError::fatal(sink, message)
}

/// The target table of `schema`, created first with `create_table`; a
/// table that does not exist is an error that shows its DDL.
async fn open_table(
    client: &Client,
    sink: &str,
    config: &PostgresSinkConfig,
    schema: &TableSchema,
) -> Result<PgTable, SinkError> {
    let table = PgTable::new(schema, &config.schema, &config.table_prefix)
        .map_err(|message| fatal(sink, message))?;
    let ddl = match config.dialect {
        SqlDialect::Postgres => create_statements(&table),
        SqlDialect::Cratedb => cratedb::create_statement(&table),
    };
    if config.create_table {
        super::ddl::create_if_missing(client, &ddl)
            .await
            .map_err(|e| {
                fatal(
                    sink,
                    format!(
                        "creating {}: {}",
                        table.qualified(),
                        crate::error_text::with_causes(&e)
                    ),
                )
            })?;
    }
    // information_schema answers on PostgreSQL and CrateDB alike.
    let found = client
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
            &[&table.schema, &table.name],
        )
        .await
        .map_err(|e| fatal(sink, crate::error_text::with_causes(&e)))?;
    if found.is_empty() {
        return Err(fatal(
            sink,
            format!(
                "table {} does not exist: set create_table = true, or create it with: {}",
                table.qualified(),
                ddl.replace('\n', " ")
            ),
        ));
    }
    Ok(table)
}

/// With exactly-once: creates the checkpoint table (with `create_table`)
/// and reads it, so that a missing table fails the start, not the first
/// batch (each batch reads its shards' checkpoints).
async fn open_checkpoint_table(
    client: &Client,
    sink: &str,
    config: &PostgresSinkConfig,
) -> Result<(), SinkError> {
    if config.create_table {
        super::ddl::create_if_missing(client, &create_checkpoint_table(&config.schema))
            .await
            .map_err(|e| fatal(sink, crate::error_text::with_causes(&e)))?;
    }
    client
        .query(
            &format!("SELECT 1 FROM {} LIMIT 1", checkpoint_table(&config.schema)),
            &[],
        )
        .await
        .map_err(|e| {
            fatal(
                sink,
                format!(
                    "reading {} (create_table = true creates it): {}",
                    checkpoint_table(&config.schema),
                    crate::error_text::with_causes(&e)
                ),
            )
        })?;
    Ok(())
}

/// Ends a session idle inside a transaction this long. The sink's own
/// transactions send their statements back to back, so only a stalled
/// process reaches it.
const IDLE_IN_TRANSACTION_LIMIT: &str = "SET idle_in_transaction_session_timeout = '15s'";

/// One row's parameters, all text (NULL for a tombstone's items), borrowed
/// from the batch's changes where they can be.
type Row<'a> = Vec<Param<'a>>;

/// The newest change per key of one table (keyed by its key parameters):
/// its batch position, row and event.
type Latest<'a> = hashbrown::HashMap<Row<'a>, ((usize, usize), Row<'a>, &'a ChangeEvent)>;

/// Upserts rows in the open transaction.
async fn upsert(
    tx: &tokio_postgres::Transaction<'_>,
    table: &PgTable,
    rows: &[&Row<'_>],
    dialect: SqlDialect,
) -> Result<(), tokio_postgres::Error> {
    for group in rows.chunks(ROWS_PER_STATEMENT) {
        let per_row = table.keys.len() + 4 + table.columns.len();
        let sql = match dialect {
            SqlDialect::Postgres => upsert_statement(table, group.len()),
            SqlDialect::Cratedb => cratedb::upsert_statement(table, group.len()),
        };
        let statement = tx
            .prepare_typed(&sql, &vec![Type::TEXT; per_row * group.len()])
            .await?;
        let params: Vec<&(dyn ToSql + Sync)> = group
            .iter()
            .flat_map(|row| row.iter().map(|p| p as &(dyn ToSql + Sync)))
            .collect();
        tx.execute(&statement, &params).await?;
    }
    Ok(())
}

impl SinkWriter for PostgresSink {
    async fn sweep(&mut self, table: &str, below: &SequenceNumber) -> Result<(), SinkError> {
        self.sweep_table(table, below).await
    }

    async fn write(&mut self, batch: Batch) -> Result<Vec<Rejected>, SinkError> {
        let advanced = self.advanced_checkpoints(&batch);
        let shards: Vec<ShardKey> = advanced.keys().cloned().collect();
        let seen = self.refresh_checkpoints(&shards).await?;
        let built = self.rows_with_columns(&batch).await?;
        self.write_rows(built, advanced, &seen).await
    }
}

/// One table's rows, upserted a range at a time, each range in its own transaction.
struct RangeUpsert<'a> {
    client: &'a mut tokio_postgres::Client,
    table: &'a PgTable,
    rows: Vec<&'a Row<'a>>,
    dialect: SqlDialect,
}

impl RangeWriter for RangeUpsert<'_> {
    type Error = Failure;

    async fn write_range(&mut self, range: Range<usize>) -> Result<(), Refusal<Failure>> {
        let attempt = async {
            let tx = self.client.transaction().await?;
            upsert(&tx, self.table, &self.rows[range], self.dialect).await?;
            tx.commit().await
        };
        attempt.await.map_err(|err| match classify(&err) {
            Failure::Data(message) => Refusal::Data(message),
            failure => Refusal::Other(failure),
        })
    }
}
