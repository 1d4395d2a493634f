//! Writes batches into ClickHouse: one insert per target table (several at
//! once), bad rows found by bisection and dead-lettered with the server's message.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::auto_columns::AutoColumns;
use super::client::{ClickHouseClient, ClickHouseError, ErrorKind};
use super::ddl::{create_table_statement, quote, TargetTable};
use super::kinds::ClickHouseKinds;
use super::rows::{encode_row, RowError};
use super::server::{Capabilities, ServerVersion};
use super::{ClickHouseMode, ClickHouseSinkConfig};
use crate::metric_names as names;
use crate::model::{Item, SequenceNumber, TableSchema};
use crate::sink::refused::{write_isolating_refused, RangeWriter, Refusal};
use crate::sink::{Batch, Rejected, SinkError, SinkWriter};

/// The `clickhouse` sink.
pub struct ClickHouseSink {
    name: String,
    client: Arc<ClickHouseClient>,
    caps: Capabilities,
    tables: HashMap<Arc<str>, Arc<TargetTable>>,
    concurrency: Arc<Semaphore>,
    /// Inferred columns (`columns = "auto"`).
    auto: Option<AutoColumns>,
}

impl ClickHouseSink {
    /// Connects, detects the server's capabilities, and creates (with
    /// `create_table`) or checks the target tables.
    pub async fn connect(
        name: &str,
        config: &ClickHouseSinkConfig,
        schemas: &[TableSchema],
    ) -> Result<Self, SinkError> {
        let client = ClickHouseClient::new(
            &config.url,
            &config.user,
            config.password.as_ref().map(|p| p.expose().to_owned()),
            config.request_timeout,
            config.compress,
        )
        .map_err(|e| fatal(name, e.message))?;
        let caps = server_capabilities(&client, name).await?;
        let mut tables = open_tables(&client, name, config, schemas, caps).await?;
        let auto = if config.columns.is_auto() {
            let kinds = ClickHouseKinds {
                bool_type: caps.bool_type,
            };
            let targets: Vec<&TargetTable> = tables.values().map(Arc::as_ref).collect();
            let auto = AutoColumns::open(name, &client, &config.database, kinds, &targets)
                .await
                .map_err(|e| fatal(name, format!("inferred columns: {e}")))?;
            for target in tables.values_mut() {
                *target = Arc::new(auto.target(target));
            }
            Some(auto)
        } else {
            None
        };
        Ok(Self {
            name: name.to_owned(),
            client: Arc::new(client),
            caps,
            tables,
            concurrency: Arc::new(Semaphore::new(config.max_concurrency)),
            auto,
        })
    }

    /// With `columns = "auto"`: adds and widens the columns that `batch`
    /// needs in `tables` (whose rows found values without one). Returns
    /// true when some columns changed.
    async fn evolve_columns(
        &mut self,
        batch: &Batch,
        tables: &HashSet<Arc<str>>,
    ) -> Result<bool, SinkError> {
        let Some(auto) = self.auto.as_mut() else {
            return Ok(false);
        };
        let mut items: HashMap<Arc<str>, Vec<(&Item, &SequenceNumber)>> = HashMap::new();
        for (_, event) in batch.events().filter(|(_, e)| tables.contains(&e.table)) {
            let image = match self.tables.get(&event.table).map(|t| t.mode) {
                Some(ClickHouseMode::State) if event.op.is_upsert() => event.new_image.as_ref(),
                Some(ClickHouseMode::Changelog) => {
                    event.new_image.as_ref().or(event.old_image.as_ref())
                }
                _ => None,
            };
            if let Some(item) = image.and_then(|image| image.item().ok()) {
                items
                    .entry(Arc::clone(&event.table))
                    .or_default()
                    .push((item, event.version()));
            }
        }
        let mut any = false;
        for (table, items) in items {
            let Some(target) = self.tables.get(&table) else {
                continue;
            };
            let changed = auto
                .evolve(&self.client, target, &items)
                .await
                .map_err(|err| schema_error(&self.name, err))?;
            if changed {
                let evolved = Arc::new(auto.target(target));
                self.tables.insert(table, evolved);
                any = true;
            }
        }
        Ok(any)
    }

    /// With `columns = "auto"`, after the server refused rows: when another
    /// worker changed the columns meanwhile, the batch is retried with
    /// them (a transient error) instead of dead-lettering those rows.
    async fn columns_changed_elsewhere(&mut self) -> Result<bool, SinkError> {
        let Some(auto) = self.auto.as_mut() else {
            return Ok(false);
        };
        let mut changed = false;
        for target in self.tables.values_mut() {
            if auto
                .refresh(&self.client, target)
                .await
                .map_err(|err| schema_error(&self.name, err))?
            {
                *target = Arc::new(auto.target(target));
                changed = true;
            }
        }
        Ok(changed)
    }
}

/// A failure to read or change the inferred columns: retried, as the
/// server may be briefly away or busy with another worker's change.
fn schema_error(sink: &str, err: ClickHouseError) -> SinkError {
    match err.kind {
        ErrorKind::Fatal if err.code.is_none() => SinkError::Fatal {
            sink: sink.to_owned(),
            message: err.message,
        },
        _ => SinkError::Transient {
            sink: sink.to_owned(),
            message: format!("changing inferred columns: {}", err.message),
        },
    }
}

/// Why a target table cannot be written.
#[derive(Debug, thiserror::Error)]
enum TableCheckError {
    /// Its columns cannot be read.
    #[error("cannot read the columns of {table}: {source}")]
    Read {
        table: String,
        #[source]
        source: ClickHouseError,
    },
    /// It does not exist and the sink may not create it.
    #[error("table {table} does not exist: set create_table = true, or create it with: {ddl}")]
    Missing { table: String, ddl: String },
    /// It lacks columns the sink writes.
    #[error("table {table} lacks the columns {missing:?}; expected: {ddl}")]
    Lacks {
        table: String,
        missing: Vec<String>,
        ddl: String,
    },
}

/// Checks that the target table exists with every column the sink writes.
async fn check_columns(
    client: &ClickHouseClient,
    target: &TargetTable,
    caps: Capabilities,
    ddl: &str,
) -> Result<(), TableCheckError> {
    let sql = format!(
        "SELECT name FROM system.columns WHERE database = '{}' AND table = '{}' FORMAT TabSeparated",
        target.database.replace('\'', "\\'"),
        target.name.replace('\'', "\\'")
    );
    let body = client
        .query(&sql)
        .await
        .map_err(|source| TableCheckError::Read {
            table: target.qualified(),
            source,
        })?;
    let existing: Vec<&str> = body.lines().collect();
    let ddl = ddl.replace('\n', " ");
    if existing.is_empty() {
        return Err(TableCheckError::Missing {
            table: target.qualified(),
            ddl,
        });
    }
    let missing: Vec<String> = target
        .column_types(caps)
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| !existing.contains(&name.as_str()))
        .collect();
    if !missing.is_empty() {
        return Err(TableCheckError::Lacks {
            table: target.qualified(),
            missing,
            ddl,
        });
    }
    Ok(())
}

/// Rows of one target table: their JSON lines one after another in `text`,
/// and per row its (chunk, event) index and its bytes in `text`.
struct TableRows {
    target: Arc<TargetTable>,
    text: String,
    rows: Vec<((usize, usize), std::ops::Range<usize>)>,
}

/// A batch encoded as rows: per target table, the refused events, the
/// values left out of inferred columns, and the tables with unplanned
/// values (they need a column or a wider one).
struct Encoded {
    by_table: HashMap<Arc<str>, TableRows>,
    rejected: Vec<Rejected>,
    untyped: HashMap<Arc<str>, u64>,
    unplanned: HashSet<Arc<str>>,
}

impl ClickHouseSink {
    /// Encodes every event of `batch` for its target table.
    fn encode(&self, batch: &Batch) -> Result<Encoded, SinkError> {
        let mut encoded = Encoded {
            by_table: HashMap::new(),
            rejected: Vec::new(),
            untyped: HashMap::new(),
            unplanned: HashSet::new(),
        };
        let batch_bytes = batch
            .chunks
            .iter()
            .map(|c| c.bytes as usize)
            .sum::<usize>()
            .saturating_add(batch.chunks.iter().map(|c| c.events.len() * 64).sum());
        for ((chunk, event_index), event) in batch.events() {
            let Some(target) = self.tables.get(&event.table) else {
                encoded.rejected.push(Rejected {
                    chunk,
                    event: event_index,
                    reason: format!("no target table for source table {}", event.table),
                });
                continue;
            };
            let table = encoded
                .by_table
                .entry(Arc::clone(&event.table))
                .or_insert_with(|| TableRows {
                    target: Arc::clone(target),
                    // Rows are about as long as the records: one allocation
                    // up front instead of doubling (and copying) as it grows.
                    text: String::with_capacity(batch_bytes),
                    rows: Vec::new(),
                });
            let start = table.text.len();
            match encode_row(target, event, self.caps, &mut table.text) {
                Ok(findings) => {
                    if findings.untyped > 0 {
                        *encoded.untyped.entry(Arc::clone(&event.table)).or_default() +=
                            u64::from(findings.untyped);
                    }
                    if findings.unplanned {
                        encoded.unplanned.insert(Arc::clone(&event.table));
                    }
                    table
                        .rows
                        .push(((chunk, event_index), start..table.text.len()))
                }
                Err(RowError::Reject(reason)) => {
                    table.text.truncate(start);
                    encoded.rejected.push(Rejected {
                        chunk,
                        event: event_index,
                        reason,
                    });
                }
                Err(RowError::Fatal(message)) => {
                    return Err(SinkError::Fatal {
                        sink: self.name.clone(),
                        message,
                    })
                }
            }
        }
        Ok(encoded)
    }
}

/// A failure of the sink `sink` that retrying cannot fix.
fn fatal(sink: &str, message: String) -> SinkError {
    SinkError::fatal(sink, message)
}

/// What the server supports, from its version.
async fn server_capabilities(
    client: &ClickHouseClient,
    sink: &str,
) -> Result<Capabilities, SinkError> {
    let version_text = client
        .query("SELECT version()")
        .await
        .map_err(|e| fatal(sink, format!("cannot reach ClickHouse: {e}")))?;
    let version = ServerVersion::parse(&version_text).ok_or_else(|| {
        fatal(
            sink,
            format!("cannot read the server version from {version_text:?}"),
        )
    })?;
    let caps = version.capabilities();
    tracing::info!(sink, version = %version_text.trim(), ?caps, "connected to ClickHouse");
    Ok(caps)
}

/// The target tables of `schemas`, created first (with their database)
/// with `create_table`, and their columns checked.
async fn open_tables(
    client: &ClickHouseClient,
    sink: &str,
    config: &ClickHouseSinkConfig,
    schemas: &[TableSchema],
    caps: Capabilities,
) -> Result<HashMap<Arc<str>, Arc<TargetTable>>, SinkError> {
    let fatal = |message: String| fatal(sink, message);
    if config.create_table {
        client
            .query(&format!(
                "CREATE DATABASE IF NOT EXISTS {}",
                quote(&config.database)
            ))
            .await
            .map_err(|e| fatal(format!("creating database {}: {e}", config.database)))?;
    }
    let mut tables = HashMap::new();
    for schema in schemas {
        let target = TargetTable::new(
            schema,
            &config.database,
            &config.table_prefix,
            config.mode,
            config.columns.mapped(),
        )
        .map_err(fatal)?;
        let ddl = create_table_statement(&target, caps);
        if config.create_table {
            client
                .query(&ddl)
                .await
                .map_err(|e| fatal(format!("creating table {}: {e}", target.qualified())))?;
        }
        check_columns(client, &target, caps, &ddl)
            .await
            .map_err(|err| fatal(crate::error_text::with_causes(&err)))?;
        tables.insert(Arc::clone(&schema.name), Arc::new(target));
    }
    Ok(tables)
}

impl SinkWriter for ClickHouseSink {
    async fn write(&mut self, batch: Batch) -> Result<Vec<Rejected>, SinkError> {
        let mut encoded = self.encode(&batch)?;
        // Values that need a new or wider column: make it, then encode
        // again. A value is never written without the column it needs.
        for _ in 0..3 {
            if encoded.unplanned.is_empty() {
                break;
            }
            self.evolve_columns(&batch, &encoded.unplanned).await?;
            encoded = self.encode(&batch)?;
        }
        if !encoded.unplanned.is_empty() {
            return Err(SinkError::Transient {
                sink: self.name.clone(),
                message: format!(
                    "the inferred columns of {:?} still lack what the batch needs after three changes; retrying the batch",
                    encoded.unplanned
                ),
            });
        }
        let Encoded {
            by_table,
            mut rejected,
            untyped,
            ..
        } = encoded;
        let mut inserts = JoinSet::new();
        for (_, table) in by_table {
            let client = Arc::clone(&self.client);
            let semaphore = Arc::clone(&self.concurrency);
            inserts.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                insert_finding_bad_rows(&client, table).await
            });
        }
        let mut failure: Option<ClickHouseError> = None;
        while let Some(joined) = inserts.join_next().await {
            match joined {
                Ok(Ok(mut bad)) => rejected.append(&mut bad),
                Ok(Err(err)) => {
                    // A fatal error outranks a transient one.
                    if failure.as_ref().is_none_or(|f| f.kind != ErrorKind::Fatal) {
                        failure = Some(err);
                    }
                }
                Err(join) => {
                    return Err(SinkError::Fatal {
                        sink: self.name.clone(),
                        message: format!("insert task failed: {join}"),
                    })
                }
            }
        }
        if let Some(err) = failure {
            return Err(self.sink_error(err));
        }
        if !rejected.is_empty() && self.columns_changed_elsewhere().await? {
            return Err(SinkError::Transient {
                sink: self.name.clone(),
                message: "another worker changed the inferred columns while rows were refused; retrying the batch with them".into(),
            });
        }
        for (table, count) in untyped {
            metrics::counter!(names::SCHEMA_UNTYPED_VALUES, "sink" => self.name.clone(),
                "table" => table.to_string())
            .increment(count);
        }
        Ok(rejected)
    }

    async fn sweep(&mut self, table: &str, below: &SequenceNumber) -> Result<(), SinkError> {
        self.sweep_table(table, below)
            .await
            .map_err(|err| self.sink_error(err))
    }
}

impl ClickHouseSink {
    /// A ClickHouse failure as the driver sees it.
    fn sink_error(&self, err: ClickHouseError) -> SinkError {
        match err.kind {
            ErrorKind::Fatal => SinkError::Fatal {
                sink: self.name.clone(),
                message: err.message,
            },
            _ => SinkError::Transient {
                sink: self.name.clone(),
                message: err.message,
            },
        }
    }

    /// Ends a snapshot of `table` (state layout): rows below its version
    /// that it did not rewrite are items that no longer exist; insert
    /// tombstones for them.
    async fn sweep_table(
        &self,
        table: &str,
        below: &SequenceNumber,
    ) -> Result<(), ClickHouseError> {
        let Some(target) = self.tables.get(table) else {
            return Ok(());
        };
        if target.mode != super::ClickHouseMode::State {
            return Ok(());
        }
        let version = format!("to{}('{}')", self.caps.version_type(), below.digits());
        let keys: Vec<String> = target.keys.iter().map(|k| quote(&k.name)).collect();
        let sql = format!(
            "INSERT INTO {table} ({keys}, _item, _version, _is_deleted, _approx_time_ms) \
             SELECT {keys}, '', {version}, 1, {now} FROM {table} FINAL \
             WHERE _version < {version} AND _is_deleted = 0",
            table = target.qualified(),
            keys = keys.join(", "),
            now = crate::clock::now_ms(),
        );
        self.client.query(&sql).await?;
        tracing::info!(sink = %self.name, table = %target.qualified(),
            "snapshot done: rows it did not see are marked deleted");
        Ok(())
    }
}

/// Inserts all rows; when ClickHouse rejects the data, finds the bad rows
/// by bisection and returns those as rejections.
async fn insert_finding_bad_rows(
    client: &ClickHouseClient,
    mut table: TableRows,
) -> Result<Vec<Rejected>, ClickHouseError> {
    let mut insert = RangeInsert {
        client,
        qualified: table.target.qualified(),
        columns: table.target.insert_columns(),
        // Shared, not copied: every (re)try sends a slice of it.
        text: bytes::Bytes::from(std::mem::take(&mut table.text)),
        rows: &table.rows,
    };
    let refused = write_isolating_refused(table.rows.len(), &mut insert).await?;
    Ok(refused
        .into_iter()
        .map(|row| {
            let ((chunk, event), _) = &table.rows[row.index];
            Rejected {
                chunk: *chunk,
                event: *event,
                reason: format!("ClickHouse rejected the row: {}", row.reason),
            }
        })
        .collect())
}

/// One target table's encoded rows, inserted a range at a time.
struct RangeInsert<'a> {
    client: &'a ClickHouseClient,
    qualified: String,
    columns: String,
    text: bytes::Bytes,
    rows: &'a [((usize, usize), Range<usize>)],
}

impl RangeWriter for RangeInsert<'_> {
    type Error = ClickHouseError;

    async fn write_range(&mut self, range: Range<usize>) -> Result<(), Refusal<ClickHouseError>> {
        // Rows are consecutive in `text`: any range of rows is one slice.
        let bytes = self.rows[range.start].1.start..self.rows[range.end - 1].1.end;
        let sent = self.text.slice(bytes);
        match self
            .client
            .insert(&self.qualified, &self.columns, sent)
            .await
        {
            Ok(()) => Ok(()),
            Err(err) if err.kind == ErrorKind::Data => Err(Refusal::Data(err.message)),
            Err(err) => Err(Refusal::Other(err)),
        }
    }
}
