//! Settings of the `jsonl` sink and its registration contract.

use std::path::PathBuf;

use serde::Deserialize;

use super::JsonlSink;
use crate::sink::batch::BatchConfig;
use crate::sink::registry::{InvalidField, SinkEnv, SinkSpec};
use crate::sink::SinkError;

/// Settings of the `jsonl` sink.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonlSinkConfig {
    /// Name in logs; defaults to `jsonl`.
    pub name: Option<String>,
    /// Directory; one subdirectory per source table.
    pub dir: PathBuf,
    /// Gzip each file (`.jsonl.gz`).
    #[serde(default)]
    pub gzip: bool,
    /// Start a new file once the current one holds this many bytes; one file per run when unset.
    pub rotate_bytes: Option<u64>,
    /// Batching.
    #[serde(default)]
    pub batch: BatchConfig,
}

impl SinkSpec for JsonlSinkConfig {
    type Writer = JsonlSink;

    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn batch(&self) -> &BatchConfig {
        &self.batch
    }

    fn validate(&self) -> Result<(), InvalidField> {
        if self.dir.as_os_str().is_empty() {
            return Err(InvalidField::new("dir", "must not be empty"));
        }
        if self.rotate_bytes == Some(0) {
            return Err(InvalidField::new("rotate_bytes", "must be above zero"));
        }
        Ok(())
    }

    fn needs_new_images(&self) -> bool {
        false
    }

    async fn open(&self, env: SinkEnv<'_>) -> Result<JsonlSink, SinkError> {
        Ok(JsonlSink::new(env.name, self))
    }
}
