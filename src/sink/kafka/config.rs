//! Settings of the `kafka` sink and its registration contract.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::envelope::Envelope;
use super::KafkaSink;
use crate::secret::Secret;
use crate::sink::batch::BatchConfig;
use crate::sink::registry::{InvalidField, SinkEnv, SinkSpec};
use crate::sink::SinkError;

/// Settings of the `kafka` sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Name in logs; defaults to `kafka`.
    pub name: Option<String>,
    /// Bootstrap brokers, `host:port[,host:port…]`.
    pub brokers: String,
    /// Topic per table: `{table}` becomes the table name.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// The shape of record values: `debezium`, `dynamodb` or `plain`.
    #[serde(default)]
    pub envelope: Envelope,
    /// After a delete, a record with the key and no value, so that
    /// compacted topics drop the item.
    #[serde(default = "default_true")]
    pub tombstones: bool,
    /// Create missing topics at start with `partitions` and `replication_factor`.
    #[serde(default)]
    pub create_topics: bool,
    /// Partitions of the topics the sink creates.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor of the topics the sink creates.
    #[serde(default = "default_replication")]
    pub replication_factor: i32,
    /// Records the producer may hold before sending waits (backpressure).
    #[serde(default = "default_queue")]
    pub queue_max_messages: usize,
    /// How long a record may take to be acknowledged before the batch is retried.
    #[serde(default = "default_delivery_timeout", with = "humantime_serde")]
    pub delivery_timeout: Duration,
    /// Any librdkafka property (`security.protocol`, `sasl.mechanism`,
    /// `sasl.username`, `sasl.password`, `ssl.ca.location`, …); values are
    /// never logged.
    #[serde(default)]
    pub properties: BTreeMap<String, Secret>,
    /// Batching.
    #[serde(default)]
    pub batch: BatchConfig,
}

fn default_topic() -> String {
    "{table}".into()
}

fn default_true() -> bool {
    true
}

fn default_partitions() -> i32 {
    6
}

fn default_replication() -> i32 {
    1
}

fn default_queue() -> usize {
    100_000
}

fn default_delivery_timeout() -> Duration {
    Duration::from_secs(120)
}

/// Properties the sink sets itself: delivery would not be what it promises otherwise.
pub const FIXED_PROPERTIES: [&str; 4] = [
    "bootstrap.servers",
    "enable.idempotence",
    "acks",
    "queue.buffering.max.messages",
];

impl SinkSpec for KafkaSinkConfig {
    type Writer = KafkaSink;

    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn batch(&self) -> &BatchConfig {
        &self.batch
    }

    fn validate(&self) -> Result<(), InvalidField> {
        if self.brokers.trim().is_empty() {
            return Err(InvalidField::new("brokers", "must not be empty"));
        }
        let sample = self.topic.replace("{table}", "t");
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if sample.is_empty() || sample.len() > 249 || !sample.chars().all(legal) {
            return Err(InvalidField::new(
                "topic",
                format!(
                    "{:?} is not a valid topic template: letters, digits, . _ - and {{table}}",
                    self.topic
                ),
            ));
        }
        if self.partitions < 1 || self.replication_factor < 1 {
            return Err(InvalidField::new(
                "partitions",
                "partitions and replication_factor must be at least 1",
            ));
        }
        if self.queue_max_messages == 0 || self.delivery_timeout.is_zero() {
            return Err(InvalidField::new(
                "queue_max_messages",
                "queue_max_messages and delivery_timeout must be above zero",
            ));
        }
        if let Some(fixed) = self
            .properties
            .keys()
            .find(|k| FIXED_PROPERTIES.contains(&k.as_str()))
        {
            return Err(InvalidField::new(
                format!("properties.{fixed:?}"),
                "is set by the sink (brokers, idempotent delivery with acks=all, queue_max_messages)",
            ));
        }
        Ok(())
    }

    fn needs_new_images(&self) -> bool {
        // The `dynamodb` envelope passes on whatever the stream carries.
        self.envelope != Envelope::Dynamodb
    }

    async fn open(&self, env: SinkEnv<'_>) -> Result<KafkaSink, SinkError> {
        KafkaSink::connect(env, self).await
    }
}
