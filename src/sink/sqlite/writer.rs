//! Writes batches into the SQLite replica, one transaction per batch.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, ErrorCode};

use super::schema::{
    create_statements, expected_columns, purge_statement, quote, sweep_statement, upsert_statement,
    META_COLUMNS,
};
use super::SqliteSinkConfig;
use crate::clock::now_ms;
use crate::model::{AttributeValue, ChangeEvent, KeyKind, SequenceNumber, TableSchema};
use crate::sink::{write_blocking, Batch, Rejected, SinkError, SinkWriter};

/// How often tombstones are purged when purging is configured.
const PURGE_EVERY: Duration = Duration::from_secs(60);

struct Table {
    schema: TableSchema,
    upsert: String,
    purge: String,
    sweep: String,
}

struct State {
    name: String,
    path: PathBuf,
    conn: Connection,
    tables: HashMap<Arc<str>, Table>,
    purge_after: Option<Duration>,
    last_purge: Instant,
}

/// The `sqlite` sink. Writes run on the blocking thread pool.
pub struct SqliteSink {
    name: String,
    state: Arc<Mutex<State>>,
}

impl SqliteSink {
    /// Opens (creating) the database and a replica table and live view per
    /// source table. Fails when an existing table has other columns.
    pub fn open(
        name: &str,
        config: &SqliteSinkConfig,
        tables: &[TableSchema],
    ) -> Result<Self, SinkError> {
        let fatal = SinkError::fatal_of(name);
        let path = &config.path;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| fatal(format!("cannot create {}: {e}", parent.display())))?;
        }
        let conn = open_connection(path).map_err(|e| fatal(format!("{}: {e}", path.display())))?;
        let mut by_name = HashMap::new();
        for schema in tables {
            if let Some(key) = schema
                .keys
                .iter()
                .find(|k| META_COLUMNS.contains(&k.name.as_str()))
            {
                return Err(fatal(format!(
                    "table {}: key attribute {:?} collides with a column the sink adds",
                    schema.name, key.name
                )));
            }
            conn.execute_batch(&create_statements(schema))
                .map_err(|e| {
                    fatal(format!(
                        "{}: creating table {}: {e}",
                        path.display(),
                        schema.name
                    ))
                })?;
            check_columns(&conn, schema)
                .map_err(|err| fatal(crate::error_text::with_causes(&err)))?;
            by_name.insert(
                Arc::clone(&schema.name),
                Table {
                    schema: schema.clone(),
                    upsert: upsert_statement(schema),
                    purge: purge_statement(schema),
                    sweep: sweep_statement(schema),
                },
            );
        }
        Ok(Self {
            name: name.to_owned(),
            state: Arc::new(Mutex::new(State {
                name: name.to_owned(),
                path: path.clone(),
                conn,
                tables: by_name,
                purge_after: config.purge_tombstones_after,
                last_purge: Instant::now(),
            })),
        })
    }
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a committed batch survives power loss, so acknowledging it is safe.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(Duration::from_secs(30))?;
    Ok(conn)
}

/// Why an existing replica table cannot be written.
#[derive(Debug, thiserror::Error)]
enum ColumnCheckError {
    /// Its columns cannot be read.
    #[error("cannot read the columns of table {table}: {source}")]
    Read {
        table: String,
        #[source]
        source: rusqlite::Error,
    },
    /// It has other columns than the sink writes.
    #[error(
        "table {table} exists with columns {found:?}, expected {expected:?}; \
         drop it or point the sink at another file"
    )]
    Mismatch {
        table: String,
        found: Vec<String>,
        expected: Vec<String>,
    },
}

fn check_columns(conn: &Connection, schema: &TableSchema) -> Result<(), ColumnCheckError> {
    let read_failed = |source| ColumnCheckError::Read {
        table: schema.name.to_string(),
        source,
    };
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({})", quote(&schema.name)))
        .map_err(read_failed)?;
    let found: Vec<String> = stmt
        .query_map([], |row| row.get::<_, String>(1))
        .and_then(|rows| rows.collect())
        .map_err(read_failed)?;
    let expected = expected_columns(schema);
    if found != expected {
        return Err(ColumnCheckError::Mismatch {
            table: schema.name.to_string(),
            found,
            expected,
        });
    }
    Ok(())
}

impl SinkWriter for SqliteSink {
    async fn write(&mut self, batch: Batch) -> Result<Vec<Rejected>, SinkError> {
        write_blocking(&self.name, &self.state, batch, State::write).await
    }

    async fn sweep(&mut self, table: &str, below: &SequenceNumber) -> Result<(), SinkError> {
        let state = Arc::clone(&self.state);
        let (table, below) = (table.to_owned(), below.clone());
        tokio::task::spawn_blocking(move || {
            state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .sweep(&table, &below)
        })
        .await
        .map_err(|e| SinkError::Fatal {
            sink: self.name.clone(),
            message: format!("sweep task failed: {e}"),
        })?
    }
}

impl State {
    /// Marks the rows of `table` below `below` deleted (a snapshot's end).
    fn sweep(&mut self, table: &str, below: &SequenceNumber) -> Result<(), SinkError> {
        let Some(target) = self.tables.get(table) else {
            return Ok(());
        };
        let swept = self
            .conn
            .execute(&target.sweep, params![below.to_padded(), now_ms()])
            .map_err(|e| sqlite_error(&self.name, &self.path, e))?;
        tracing::info!(sink = %self.name, table = %target.schema.name, swept,
            "snapshot done: rows it did not see are marked deleted");
        Ok(())
    }

    fn write(&mut self, batch: &Batch) -> Result<Vec<Rejected>, SinkError> {
        let now = now_ms();
        let mut rejected = Vec::new();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| sqlite_error(&self.name, &self.path, e))?;
        for ((chunk, index), event) in batch.events() {
            let Some(table) = self.tables.get(&event.table) else {
                rejected.push(Rejected {
                    chunk,
                    event: index,
                    reason: format!("no replica table for source table {}", event.table),
                });
                continue;
            };
            let row = match row_values(&table.schema, event, now) {
                Ok(row) => row,
                Err(reason) => {
                    rejected.push(Rejected {
                        chunk,
                        event: index,
                        reason,
                    });
                    continue;
                }
            };
            let mut stmt = tx
                .prepare_cached(&table.upsert)
                .map_err(|e| sqlite_error(&self.name, &self.path, e))?;
            stmt.execute(params_from_iter(row))
                .map_err(|e| sqlite_error(&self.name, &self.path, e))?;
        }
        tx.commit()
            .map_err(|e| sqlite_error(&self.name, &self.path, e))?;
        if let Some(after) = self.purge_after {
            if self.last_purge.elapsed() >= PURGE_EVERY.min(after) {
                self.last_purge = Instant::now();
                let cutoff = now - i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
                for table in self.tables.values() {
                    let purged = self
                        .conn
                        .execute(&table.purge, [cutoff])
                        .map_err(|e| sqlite_error(&self.name, &self.path, e))?;
                    if purged > 0 {
                        tracing::info!(sink = %self.name, table = %table.schema.name, purged, "purged tombstones");
                    }
                }
            }
        }
        Ok(rejected)
    }
}

fn sqlite_error(name: &str, path: &Path, err: rusqlite::Error) -> SinkError {
    let transient = matches!(
        err.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::OutOfMemory
        )
    );
    let message = format!("{}: {err}", path.display());
    if transient {
        SinkError::Transient {
            sink: name.to_owned(),
            message,
        }
    } else {
        SinkError::Fatal {
            sink: name.to_owned(),
            message,
        }
    }
}

/// The row of one event: key columns, item JSON, padded version, deleted flag, time.
fn row_values(schema: &TableSchema, event: &ChangeEvent, now: i64) -> Result<Vec<Value>, String> {
    let mut row = Vec::with_capacity(schema.keys.len() + 4);
    for key in &schema.keys {
        let value = event
            .keys
            .get(&key.name)
            .ok_or_else(|| format!("key attribute {:?} is missing", key.name))?;
        row.push(match (key.kind, value) {
            (KeyKind::S, AttributeValue::S(s)) => Value::Text(s.clone()),
            (KeyKind::N, AttributeValue::N(n)) => Value::Text(n.as_str().to_owned()),
            (KeyKind::B, AttributeValue::B(b)) => Value::Blob(b.clone()),
            (kind, other) => {
                return Err(format!(
                    "key attribute {:?} is {} but the table declares {kind:?}",
                    key.name,
                    other.type_tag()
                ))
            }
        });
    }
    let item = if event.op.is_upsert() {
        let image = event.new_image.as_ref().ok_or_else(|| {
            "the change has no new image: the stream view must be NEW_IMAGE or NEW_AND_OLD_IMAGES"
                .to_owned()
        })?;
        Value::Text(image.json())
    } else {
        Value::Null
    };
    row.push(item);
    row.push(Value::Text(event.version().to_padded()));
    row.push(Value::Integer(i64::from(!event.op.is_upsert())));
    row.push(Value::Integer(now));
    Ok(row)
}
