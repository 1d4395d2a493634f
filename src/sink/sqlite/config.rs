//! Settings of the `sqlite` sink and its registration contract.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::SqliteSink;
use crate::sink::batch::BatchConfig;
use crate::sink::registry::{InvalidField, SinkEnv, SinkSpec};
use crate::sink::SinkError;

/// Settings of the `sqlite` sink.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqliteSinkConfig {
    /// Name in logs; defaults to `sqlite`.
    pub name: Option<String>,
    /// Database file; created when missing.
    pub path: PathBuf,
    /// Remove tombstones (deleted rows) this long after the delete; kept forever when unset.
    /// Keep it longer than any replay window (hours), or a replayed insert could resurrect a row.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<crate::json_schema::HumanDuration>")]
    pub purge_tombstones_after: Option<Duration>,
    /// Batching.
    #[serde(default)]
    pub batch: BatchConfig,
}

impl SinkSpec for SqliteSinkConfig {
    type Writer = SqliteSink;

    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn batch(&self) -> &BatchConfig {
        &self.batch
    }

    fn validate(&self) -> Result<(), InvalidField> {
        if self.path.as_os_str().is_empty() {
            return Err(InvalidField::new("path", "must not be empty"));
        }
        Ok(())
    }

    fn needs_new_images(&self) -> bool {
        true
    }

    async fn open(&self, env: SinkEnv<'_>) -> Result<SqliteSink, SinkError> {
        SqliteSink::open(env.name, self, env.tables)
    }
}
