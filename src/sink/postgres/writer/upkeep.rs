//! The PostgreSQL sink's upkeep beside writing batches: the `copy`
//! method's staging tables, created once per connection, ending a
//! snapshot (the sweep), and deleting tombstones older than
//! `purge_tombstones_after`.

use tokio_postgres::types::Type;

use super::{classify, Failure, PostgresSink, PURGE_EVERY};
use crate::model::SequenceNumber;
use crate::sink::postgres::sql::sweep_statement;
use crate::sink::postgres::SqlDialect;
use crate::sink::postgres::{copy, cratedb, PgTable};
use crate::sink::SinkError;

impl PostgresSink {
    /// Creates this connection's staging tables (`copy` method) once.
    pub(super) async fn ensure_stages(&mut self) -> Result<(), SinkError> {
        let ddl: Vec<String> = self.tables.values().map(copy::create_stage).collect();
        let name = self.name.clone();
        let connected = self.client.as_ref().is_some_and(|c| !c.is_closed());
        if self.staged && connected {
            return Ok(());
        }
        let client = self.client().await?;
        if let Err(err) = client.batch_execute(&ddl.join(";\n")).await {
            return Err(match classify(&err) {
                Failure::Transient(message) => SinkError::Transient {
                    sink: name,
                    message,
                },
                Failure::Data(message) | Failure::Fatal(message) => SinkError::Fatal {
                    sink: name,
                    message: format!("creating the staging tables: {message}"),
                },
            });
        }
        self.staged = true;
        Ok(())
    }

    /// Ends a snapshot of `table`: its rows below `below` that the snapshot
    /// did not rewrite are marked deleted.
    pub(super) async fn sweep_table(
        &mut self,
        table: &str,
        below: &SequenceNumber,
    ) -> Result<(), SinkError> {
        let Some(target) = self.tables.get(table).cloned() else {
            return Ok(());
        };
        let (sql, version) = match self.dialect {
            SqlDialect::Postgres => (sweep_statement(&target), below.digits().to_owned()),
            SqlDialect::Cratedb => (cratedb::sweep_statement(&target), below.to_padded()),
        };
        let name = self.name.clone();
        let transient = |e: tokio_postgres::Error| SinkError::Transient {
            sink: name.clone(),
            message: crate::error_text::with_causes(&e),
        };
        let client = self.client().await?;
        let statement = client
            .prepare_typed(&sql, &[Type::TEXT])
            .await
            .map_err(transient)?;
        let swept = client
            .execute(&statement, &[&version])
            .await
            .map_err(transient)?;
        tracing::info!(sink = %name, table = %target.qualified(), swept,
            "snapshot done: rows it did not see are marked deleted");
        Ok(())
    }

    /// Deletes tombstones older than the retention, at most every minute.
    pub(super) async fn purge_tombstones(&mut self) -> Result<(), SinkError> {
        let Some(after) = self.purge_after else {
            return Ok(());
        };
        if self.last_purge.elapsed() < PURGE_EVERY.min(after) {
            return Ok(());
        }
        self.last_purge = std::time::Instant::now();
        let seconds = after.as_secs_f64().to_string();
        let tables: Vec<PgTable> = self.tables.values().cloned().collect();
        let name = self.name.clone();
        let dialect = self.dialect;
        let client = self.client().await?;
        for table in tables {
            let sql = match dialect {
                SqlDialect::Postgres => format!(
                    "DELETE FROM {} WHERE _deleted AND _updated_at < now() - $1::text::float8 * interval '1 second'",
                    table.qualified()
                ),
                SqlDialect::Cratedb => format!(
                    "DELETE FROM {} WHERE _deleted AND _updated_at < CURRENT_TIMESTAMP - ($1::DOUBLE * 1000)::BIGINT",
                    table.qualified()
                ),
            };
            let statement = client
                .prepare_typed(&sql, &[Type::TEXT])
                .await
                .map_err(|e| SinkError::Transient {
                    sink: name.clone(),
                    message: crate::error_text::with_causes(&e),
                })?;
            let purged = client.execute(&statement, &[&seconds]).await.map_err(|e| {
                SinkError::Transient {
                    sink: name.clone(),
                    message: crate::error_text::with_causes(&e),
                }
            })?;
            if purged > 0 {
                tracing::info!(sink = %name, table = %table.qualified(), purged, "purged tombstones");
            }
        }
        Ok(())
    }
}
