//! Settings of the `postgres` sink (PostgreSQL or CrateDB) and its registration contract.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::PostgresSink;
use crate::schema::SchemaEvent;
use crate::secret::Secret;
use crate::sink::batch::BatchConfig;
use crate::sink::columns::ColumnsSetting;
use crate::sink::registry::{is_identifier, InvalidField, SinkEnv, SinkSpec};
use crate::sink::SinkError;

/// Settings of the `postgres` sink.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkConfig {
    /// Name in logs; defaults to `postgres`.
    pub name: Option<String>,
    /// Connection string (`postgres://user:password@host:5432/db` or
    /// `host=… user=…`); never logged (it may hold the password).
    pub url: Secret,
    /// PEM file of extra trusted CA certificates for TLS (`sslmode=require`),
    /// e.g. a cloud provider's database CA bundle; the system's roots are
    /// always trusted too.
    pub ca_file: Option<PathBuf>,
    /// Schema of the target tables.
    #[serde(default = "default_pg_schema")]
    pub schema: String,
    /// Prefix of the target table names (`<prefix><source table>`).
    #[serde(default)]
    pub table_prefix: String,
    /// Create the schema, tables and live views when missing.
    #[serde(default)]
    pub create_table: bool,
    /// `postgres` (default) or `cratedb` (no transactions: upserts only,
    /// idempotent by version, no transactional checkpoint).
    #[serde(default)]
    pub dialect: SqlDialect,
    /// Write each shard's checkpoint in the same transaction as the data
    /// (`<schema>.dynamo_cdc_checkpoints`) and skip changes at or below it:
    /// a replay can never apply a batch twice. PostgreSQL only; default on there.
    pub exactly_once: Option<bool>,
    /// How rows reach the tables: `copy` (binary COPY into a staging table,
    /// then one merge; PostgreSQL's default) or `insert` (multi-row upserts;
    /// the only method for CrateDB).
    pub write_method: Option<PgWriteMethod>,
    /// Delete tombstones this long after the delete; kept forever when unset.
    /// Keep it longer than any replay window, or a replayed insert could resurrect a row.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<crate::json_schema::HumanDuration>")]
    pub purge_tombstones_after: Option<Duration>,
    /// `"auto"`: a typed column per top-level attribute next to `item`,
    /// added and widened as the items change (PostgreSQL only; see the
    /// book's "Typed columns" page). None by default.
    #[serde(default)]
    pub columns: ColumnsSetting,
    /// Batching.
    #[serde(default)]
    pub batch: BatchConfig,
}

/// How the `postgres` sink sends a batch's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PgWriteMethod {
    /// Multi-row `INSERT … ON CONFLICT` statements of up to 1,000 rows.
    Insert,
    /// Binary COPY into a temporary staging table, then `INSERT … SELECT …
    /// ON CONFLICT` into the target.
    Copy,
}

/// The SQL database behind the `postgres` sink.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SqlDialect {
    /// PostgreSQL.
    #[default]
    Postgres,
    /// CrateDB (PostgreSQL wire protocol, its own SQL).
    Cratedb,
}

impl PostgresSinkConfig {
    /// Whether checkpoints are written with the data (PostgreSQL's default).
    pub fn exactly_once(&self) -> bool {
        self.exactly_once
            .unwrap_or(self.dialect == SqlDialect::Postgres)
    }

    /// The write method: as configured, else `copy` on PostgreSQL and
    /// `insert` on CrateDB.
    pub fn write_method(&self) -> PgWriteMethod {
        self.write_method.unwrap_or(match self.dialect {
            SqlDialect::Postgres => PgWriteMethod::Copy,
            SqlDialect::Cratedb => PgWriteMethod::Insert,
        })
    }
}

fn default_pg_schema() -> String {
    "public".into()
}

impl SinkSpec for PostgresSinkConfig {
    type Writer = PostgresSink;

    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn batch(&self) -> &BatchConfig {
        &self.batch
    }

    fn validate(&self) -> Result<(), InvalidField> {
        if !is_identifier(&self.schema) {
            return Err(InvalidField::new(
                "schema",
                "must be letters, digits and underscores",
            ));
        }
        if !self.table_prefix.is_empty() && !is_identifier(&self.table_prefix) {
            return Err(InvalidField::new(
                "table_prefix",
                "must be letters, digits and underscores",
            ));
        }
        if self.dialect == SqlDialect::Cratedb && self.exactly_once == Some(true) {
            return Err(InvalidField::new(
                "exactly_once",
                "CrateDB has no multi-statement transactions: exactly_once needs dialect = \"postgres\"",
            ));
        }
        if self.dialect == SqlDialect::Cratedb && self.write_method == Some(PgWriteMethod::Copy) {
            return Err(InvalidField::new(
                "write_method",
                "CrateDB has no COPY FROM STDIN: use write_method = \"insert\"",
            ));
        }
        match (&self.columns, self.dialect) {
            (ColumnsSetting::Mapped(_), _) => {
                return Err(InvalidField::new(
                    "columns",
                    "the postgres sink takes columns = \"auto\" only (hand-mapped columns are for clickhouse and s3)",
                ))
            }
            (ColumnsSetting::Auto, SqlDialect::Cratedb) => {
                return Err(InvalidField::new(
                    "columns",
                    "columns = \"auto\" needs dialect = \"postgres\"",
                ))
            }
            _ => {}
        }
        if self.url.expose().trim().is_empty() {
            return Err(InvalidField::new("url", "must not be empty"));
        }
        super::parse_url(self.url.expose()).map_err(|message| InvalidField::new("url", message))?;
        Ok(())
    }

    fn needs_new_images(&self) -> bool {
        true
    }

    async fn open(&self, env: SinkEnv<'_>) -> Result<PostgresSink, SinkError> {
        PostgresSink::connect(env.name, self, env.tables).await
    }

    async fn schema_history(
        &self,
        env: SinkEnv<'_>,
    ) -> Result<Option<Vec<SchemaEvent>>, SinkError> {
        if !self.columns.is_auto() {
            return Ok(None);
        }
        let fatal = SinkError::fatal_of(env.name);
        let connector =
            super::Connector::new(self.url.expose(), self.ca_file.as_deref()).map_err(fatal)?;
        let (client, connection) = connector.connect().await.map_err(|e| {
            fatal(format!(
                "cannot connect: {}",
                crate::error_text::with_causes(&e)
            ))
        })?;
        tokio::spawn(connection);
        let events = super::auto_columns::read_history(&client, &self.schema, &self.table_prefix)
            .await
            .map_err(|e| {
                fatal(format!(
                    "reading the schema history: {}",
                    crate::error_text::with_causes(&e)
                ))
            })?;
        Ok(Some(events))
    }
}
