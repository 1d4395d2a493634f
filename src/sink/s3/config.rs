//! Settings of the `s3` sink and its registration contract.

use std::time::Duration;

use serde::Deserialize;

use super::schema_objects::SchemaObjects;
use super::writer::bucket_store;
use super::S3Sink;
use crate::schema::SchemaEvent;
use crate::sink::batch::BatchConfig;
use crate::sink::columns::{validate_column_types, ColumnsSetting};
use crate::sink::registry::{check_http_url, InvalidField, SinkEnv, SinkSpec};
use crate::sink::SinkError;

/// Settings of the `s3` sink (the landing zone of a staged pipeline).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3SinkConfig {
    /// Name in logs; defaults to `s3`.
    pub name: Option<String>,
    /// Bucket.
    pub bucket: String,
    /// Key prefix (`landing/`); objects go to `<prefix><table>/dt=YYYY-MM-DD/…`.
    #[serde(default)]
    pub prefix: String,
    /// Region of the bucket and queue; defaults to `aws.region`.
    pub region: Option<String>,
    /// S3 endpoint for local stand-ins (path-style requests, http allowed).
    pub endpoint_url: Option<String>,
    /// SQS queue that gets a notice per object; no notices when unset.
    pub sqs_queue_url: Option<String>,
    /// SQS endpoint for local stand-ins; defaults to `endpoint_url`.
    pub sqs_endpoint_url: Option<String>,
    /// Object format.
    #[serde(default)]
    pub format: S3Format,
    /// Typed Parquet columns (`format = "parquet"` only): a list of
    /// hand-mapped columns, or `"auto"` for a column per top-level attribute;
    /// each file carries the schema as it stood when it was written.
    #[serde(default)]
    pub columns: ColumnsSetting,
    /// Batching: one object per table and shard per batch.
    #[serde(default = "s3_batch")]
    pub batch: BatchConfig,
}

fn s3_batch() -> BatchConfig {
    BatchConfig {
        max_records: 50_000,
        max_bytes: 64 * 1024 * 1024,
        max_age: Duration::from_secs(10),
        ..BatchConfig::default()
    }
}

/// The format of landed objects.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum S3Format {
    /// Gzipped JSON Lines, one change event per line (`.jsonl.gz`).
    #[default]
    JsonlGz,
    /// Parquet (Snappy), one row per change, images as DynamoDB JSON strings (`.parquet`).
    Parquet,
}

impl S3Format {
    /// The file extension, also the `format` of notices (`jsonl.gz`, `parquet`).
    pub fn extension(self) -> &'static str {
        match self {
            Self::JsonlGz => "jsonl.gz",
            Self::Parquet => "parquet",
        }
    }
}

impl SinkSpec for S3SinkConfig {
    type Writer = S3Sink;

    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn batch(&self) -> &BatchConfig {
        &self.batch
    }

    fn validate(&self) -> Result<(), InvalidField> {
        if self.bucket.trim().is_empty() {
            return Err(InvalidField::new("bucket", "must not be empty"));
        }
        if self.columns != ColumnsSetting::None && self.format != S3Format::Parquet {
            return Err(InvalidField::new(
                "columns",
                "typed columns need format = \"parquet\"",
            ));
        }
        validate_column_types(self.columns.mapped())?;
        check_http_url("endpoint_url", self.endpoint_url.as_deref())?;
        check_http_url("sqs_endpoint_url", self.sqs_endpoint_url.as_deref())?;
        check_http_url("sqs_queue_url", self.sqs_queue_url.as_deref())
    }

    fn needs_new_images(&self) -> bool {
        false
    }

    async fn open(&self, env: SinkEnv<'_>) -> Result<S3Sink, SinkError> {
        S3Sink::connect(env.name, self, env.aws).await
    }

    async fn schema_history(
        &self,
        env: SinkEnv<'_>,
    ) -> Result<Option<Vec<SchemaEvent>>, SinkError> {
        if !self.columns.is_auto() {
            return Ok(None);
        }
        let fatal = SinkError::fatal_of(env.name);
        let store = bucket_store(self, env.aws).map_err(fatal)?;
        let history = SchemaObjects::new(std::sync::Arc::new(store), &self.bucket, &self.prefix);
        let events = history
            .read(None)
            .await
            .map_err(|e| fatal(format!("reading the schema history: {e}")))?;
        Ok(Some(events))
    }
}
