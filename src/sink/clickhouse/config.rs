//! Settings of the `clickhouse` sink and its registration contract.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use super::schema_history::HistoryTable;
use super::{ClickHouseClient, ClickHouseSink};
use crate::schema::SchemaEvent;
use crate::secret::Secret;
use crate::sink::batch::BatchConfig;
use crate::sink::columns::{validate_column_types, ColumnMapping, ColumnsSetting};
use crate::sink::registry::{check_http_url, is_identifier, InvalidField, SinkEnv, SinkSpec};
use crate::sink::SinkError;

/// Settings of the `clickhouse` sink.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseSinkConfig {
    /// Name in logs; defaults to `clickhouse`.
    pub name: Option<String>,
    /// HTTP(S) interface, e.g. `http://127.0.0.1:8123`; TLS when `https://`.
    pub url: String,
    /// Database of the target tables.
    #[serde(default = "default_database")]
    pub database: String,
    /// User (HTTP basic auth).
    #[serde(default = "default_user")]
    pub user: String,
    /// Password; never logged (its `Debug` form is `***`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// `state` (versioned ReplacingMergeTree, default) or `changelog` (one row per change).
    #[serde(default)]
    pub mode: ClickHouseMode,
    /// Prefix of the target table names (`<prefix><source table>`).
    #[serde(default)]
    pub table_prefix: String,
    /// Create the database and tables when missing.
    #[serde(default)]
    pub create_table: bool,
    /// Typed columns next to the item JSON: a list of hand-mapped columns,
    /// or `"auto"` for a column per top-level attribute, added and widened
    /// as the items change (see the book's "Typed columns" page).
    #[serde(default)]
    pub columns: ColumnsSetting,
    /// Inserts running at once (one per target table).
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Timeout of one HTTP request.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub request_timeout: Duration,
    /// Gzip the inserts (default true): less network, more CPU on both ends;
    /// turn off when the server is on the same host or a fast network.
    #[serde(default = "default_compress")]
    pub compress: bool,
    /// Batching.
    #[serde(default)]
    pub batch: BatchConfig,
}

fn default_compress() -> bool {
    true
}

fn default_database() -> String {
    "default".into()
}

fn default_user() -> String {
    "default".into()
}

fn default_concurrency() -> usize {
    4
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(60)
}

/// How the `clickhouse` sink lays out its tables.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ClickHouseMode {
    /// One row per item version; `FINAL` with `_is_deleted = 0` is the current state.
    #[default]
    State,
    /// Append-only: one row per change with op, images, version and event metadata.
    Changelog,
}

impl SinkSpec for ClickHouseSinkConfig {
    type Writer = ClickHouseSink;

    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn batch(&self) -> &BatchConfig {
        &self.batch
    }

    fn validate(&self) -> Result<(), InvalidField> {
        if self.url.is_empty() {
            return Err(InvalidField::new("url", "must not be empty"));
        }
        check_http_url("url", Some(&self.url))?;
        if !is_identifier(&self.database) {
            return Err(InvalidField::new(
                "database",
                "must be letters, digits and underscores",
            ));
        }
        if !self.table_prefix.is_empty() && !is_identifier(&self.table_prefix) {
            return Err(InvalidField::new(
                "table_prefix",
                "must be letters, digits and underscores",
            ));
        }
        if self.max_concurrency == 0 {
            return Err(InvalidField::new("max_concurrency", "must be above zero"));
        }
        validate_column_names(self.columns.mapped())?;
        validate_column_types(self.columns.mapped())
    }

    fn needs_new_images(&self) -> bool {
        self.mode == ClickHouseMode::State
    }

    async fn open(&self, env: SinkEnv<'_>) -> Result<ClickHouseSink, SinkError> {
        ClickHouseSink::connect(env.name, self, env.tables).await
    }

    async fn schema_history(
        &self,
        env: SinkEnv<'_>,
    ) -> Result<Option<Vec<SchemaEvent>>, SinkError> {
        if !self.columns.is_auto() {
            return Ok(None);
        }
        let fatal = SinkError::fatal_of(env.name);
        let client = ClickHouseClient::new(
            &self.url,
            &self.user,
            self.password.as_ref().map(|p| p.expose().to_owned()),
            self.request_timeout,
            self.compress,
        )
        .map_err(|e| fatal(e.message))?;
        let events = HistoryTable::new(&self.database)
            .read(&client, &self.table_prefix)
            .await
            .map_err(|e| fatal(format!("reading the schema history: {e}")))?;
        Ok(Some(events.into_iter().map(|(_, event)| event).collect()))
    }
}

/// Column names are plain identifiers, not `_…` (the sink's own columns),
/// and each is mapped once per table.
fn validate_column_names(columns: &[ColumnMapping]) -> Result<(), InvalidField> {
    let mut names = HashSet::new();
    for (index, column) in columns.iter().enumerate() {
        if !is_identifier(&column.name) || column.name.starts_with('_') {
            return Err(InvalidField::new(
                format!("columns[{index}].name"),
                format!(
                    "{:?} must be letters, digits and underscores, not starting with `_` (reserved for the sink's columns)",
                    column.name
                ),
            ));
        }
        if !names.insert((column.table.as_deref(), column.name.as_str())) {
            return Err(InvalidField::new(
                format!("columns[{index}].name"),
                format!("column {:?} is mapped twice", column.name),
            ));
        }
    }
    Ok(())
}
