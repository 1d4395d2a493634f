//! The loader's configuration (`dynamo-cdc load`): the SQS queue, the tables'
//! keys, transforms, the enrichment join and the sinks.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{AwsConfig, SinkEntry};
use crate::dimension::DimensionConfig;
use crate::transform::{EnrichConfig, FilterSpec, JoinConfig, TransformConfig};

/// `dynamo-cdc load` configuration.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoaderConfig {
    /// Directory for dead letters; created when missing.
    pub state_dir: PathBuf,
    /// AWS connection settings (region, profile, endpoint for S3 and SQS).
    #[serde(default)]
    pub aws: AwsConfig,
    /// Where notices come from.
    pub queue: QueueConfig,
    /// The key of every source table whose objects are loaded.
    pub tables: Vec<LoaderTable>,
    /// Applied in order to every change, before its table's own transforms.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    /// Optional enrichment join of every table's changes (before each
    /// table's own `enrich` joins).
    pub enrich: Option<EnrichConfig>,
    /// Dimension tables the tables' `enrich` joins name; each is loaded once.
    #[serde(default)]
    pub dimensions: Vec<DimensionConfig>,
    /// Destinations; at least one.
    pub sinks: Vec<SinkEntry>,
    /// The Prometheus and health-probe endpoint (off unless `listen` is set).
    #[serde(default)]
    pub metrics: super::MetricsConfig,
}

/// The SQS queue of object notices.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Queue URL.
    pub url: String,
    /// Long-poll wait, at most 20 s.
    #[serde(default = "default_wait", with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub wait_time: Duration,
    /// Visibility timeout requested for a message while its object loads;
    /// extended at half-time until the sinks acknowledged it.
    #[serde(default = "default_visibility", with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub visibility_timeout: Duration,
    /// Messages per receive, 1 to 10.
    #[serde(default = "default_max_messages")]
    pub max_messages: i32,
    /// Objects that fail for good are copied under this prefix (same bucket)
    /// with a `.reason.json` next to them.
    #[serde(default = "default_dead_letter_prefix")]
    pub dead_letter_prefix: String,
}

fn default_wait() -> Duration {
    Duration::from_secs(20)
}

fn default_visibility() -> Duration {
    Duration::from_secs(60)
}

fn default_max_messages() -> i32 {
    10
}

fn default_dead_letter_prefix() -> String {
    "dead-letters/".into()
}

/// A source table's key, which the sinks key their rows on.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoaderTable {
    /// Source table name, as in the notices.
    pub name: String,
    /// Key attributes, partition key first.
    pub keys: Vec<LoaderKey>,
    /// True when the table's changes were read from a Kinesis data stream
    /// (time versions), false for DynamoDB Streams (sequence numbers).
    #[serde(default)]
    pub kinesis: bool,
    /// Filter patterns (AWS Lambda syntax, ORed) of this table's changes.
    #[serde(default)]
    pub filters: Vec<FilterSpec>,
    /// Transforms of this table's changes, after the loader-wide ones.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    /// Enrichment joins against `[[dimensions]]`, applied in order after
    /// the transforms.
    #[serde(default)]
    pub enrich: Vec<JoinConfig>,
}

/// One key attribute.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoaderKey {
    /// Attribute name.
    pub name: String,
    /// `S`, `N` or `B`.
    #[serde(rename = "type")]
    pub kind: String,
}
