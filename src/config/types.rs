//! Configuration types. Every struct rejects unknown fields.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{AwsConfig, SinkEntry};
use crate::dimension::DimensionConfig;
use crate::transform::{EnrichConfig, FilterSpec, JoinConfig, TransformConfig};

/// A whole pipeline: where state lives, how to reach AWS, which tables to follow, where to write.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Directory for checkpoints and dead letters; created when missing.
    pub state_dir: PathBuf,
    /// AWS connection settings.
    #[serde(default)]
    pub aws: AwsConfig,
    /// Stream polling settings shared by all tables.
    #[serde(default)]
    pub source: SourceSettings,
    /// Who reads which shards: one process, or workers sharing a lease table.
    #[serde(default)]
    pub coordinator: super::CoordinatorConfig,
    /// The Prometheus and health-probe endpoint (off unless `listen` is set).
    #[serde(default)]
    pub metrics: super::MetricsConfig,
    /// Tables whose streams are followed; at least one.
    pub tables: Vec<TableConfig>,
    /// Destinations; each receives every table's changes unless its
    /// `tables` says otherwise. At least one.
    pub sinks: Vec<SinkEntry>,
    /// Optional enrichment join, applied to every change after its table's
    /// filters and transforms (before the table's own `enrich` joins).
    pub enrich: Option<EnrichConfig>,
    /// Dimension tables the tables' `enrich` joins name; each is loaded once.
    #[serde(default)]
    pub dimensions: Vec<DimensionConfig>,
}

/// Polling behaviour of the DynamoDB Streams source.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SourceSettings {
    /// GetRecords `Limit`, 1 to 1000.
    pub batch_size: u32,
    /// First wait after a poll that returned nothing.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub idle_poll_min: Duration,
    /// Longest wait between polls of an idle shard.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub idle_poll_max: Duration,
    /// How often the shard list is re-read to find new shards.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub discovery_interval: Duration,
    /// Longest backoff after throttling or a server error.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub max_retry_backoff: Duration,
    /// Timeout of one request to AWS.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub request_timeout: Duration,
    /// Kinesis GetRecords `Limit`, 1 to 10,000 (default 1,000: at 5 calls
    /// a second that is 5× a shard's write limit of 1,000 records a second,
    /// and it keeps pages, and so memory, small; 10,000 measured 304 MiB
    /// RSS over 4 shards of 3.7 KB records, 1,000 measured 107 MiB).
    pub kinesis_batch_size: u32,
    /// Records of tables a Kinesis stream carries but no `[[tables]]` entry
    /// follows: counted and skipped, or written to the dead-letter file.
    pub kinesis_other_tables: OtherTablesPolicy,
}

/// What to do with Kinesis records of tables the pipeline does not follow.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OtherTablesPolicy {
    /// Count them (`other_table_records`) and move on (default).
    #[default]
    Skip,
    /// Write them to the dead-letter file and move on.
    DeadLetter,
}

impl Default for SourceSettings {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            idle_poll_min: Duration::from_millis(250),
            idle_poll_max: Duration::from_secs(2),
            discovery_interval: Duration::from_secs(10),
            max_retry_backoff: Duration::from_secs(20),
            request_timeout: Duration::from_secs(30),
            kinesis_batch_size: 1_000,
            kinesis_other_tables: OtherTablesPolicy::Skip,
        }
    }
}

/// One table whose stream is followed.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// Table name; its latest stream is followed unless `stream_arn` is set.
    pub name: String,
    /// Explicit stream ARN, for an older stream of the table.
    pub stream_arn: Option<String>,
    /// Read the table's changes from this Kinesis data stream (name or
    /// ARN; the table's Kinesis streaming destination) instead of its
    /// DynamoDB stream. Several tables may name the same stream.
    pub kinesis_stream: Option<String>,
    /// With `start_position = "at_timestamp"`: the time (RFC 3339, e.g.
    /// `2026-11-29T12:00:00Z`) of the first record to read.
    pub start_timestamp: Option<String>,
    /// Where to start a shard that has no checkpoint.
    #[serde(default)]
    pub start_position: StartPosition,
    /// What to do when the stream no longer holds records after a checkpoint.
    #[serde(default)]
    pub on_trimmed: TrimPolicy,
    /// What to do with a record that cannot be decoded.
    #[serde(default)]
    pub on_decode_error: DecodeErrorPolicy,
    /// When to copy the table's current contents before streaming.
    #[serde(default)]
    pub snapshot: SnapshotMode,
    /// Parallel Scan segments of a snapshot (`TotalSegments`).
    #[serde(default = "default_snapshot_segments")]
    pub snapshot_segments: u32,
    /// Items per Scan page (`Limit`); DynamoDB's 1 MB page limit applies too.
    pub snapshot_page_size: Option<u32>,
    /// Read-capacity budget of a snapshot, in RCU per second over all
    /// segments (measured by the Scan's `ConsumedCapacity`).
    pub snapshot_max_rcu: Option<f64>,
    /// Item budget of a snapshot, in items per second over all segments.
    pub snapshot_max_items_per_second: Option<f64>,
    /// Strongly consistent Scan reads (twice the read capacity).
    #[serde(default)]
    pub snapshot_consistent_read: bool,
    /// Filter patterns (AWS Lambda syntax, ORed): only matching changes go
    /// on; the others are acknowledged and counted. None passes everything.
    #[serde(default)]
    pub filters: Vec<FilterSpec>,
    /// Transforms applied in order to the changes that pass the filters.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    /// Enrichment joins against `[[dimensions]]`, applied in order after
    /// the transforms (a join may use attributes an earlier one added).
    #[serde(default)]
    pub enrich: Vec<JoinConfig>,
}

/// When a table's current contents are copied (a snapshot) before streaming.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// Never: only stream changes are delivered (default).
    #[default]
    Never,
    /// When the table has no checkpoint yet (its first run).
    Initial,
    /// On the first run, and again whenever changes after the checkpoint
    /// were lost (trimmed from the stream, a vanished shard, a replaced
    /// stream) instead of halting.
    WhenNeeded,
}

fn default_snapshot_segments() -> u32 {
    4
}

/// Where a shard without a checkpoint starts.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    /// The oldest record the stream still holds (24 hours back for
    /// DynamoDB Streams; the Kinesis stream's retention).
    #[default]
    TrimHorizon,
    /// Only changes made after the first start; shards already closed then are skipped.
    Latest,
    /// Kinesis only: the first record written at or after `start_timestamp`.
    AtTimestamp,
}

/// What to do when records after a checkpoint were trimmed from the stream.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TrimPolicy {
    /// Stop with an error that says what was lost (default).
    #[default]
    Halt,
    /// Log the gap as an error and continue at the oldest available record.
    Skip,
}

/// What to do with a record that cannot be decoded.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DecodeErrorPolicy {
    /// Write it with its error to the dead-letter file and move on (default).
    #[default]
    DeadLetter,
    /// Stop the pipeline with the error.
    Halt,
}
