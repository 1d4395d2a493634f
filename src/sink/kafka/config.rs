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
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub delivery_timeout: Duration,
    /// Any librdkafka property (`security.protocol`, `sasl.mechanism`,
    /// `sasl.username`, `sasl.password`, `ssl.ca.location`, …); values are
    /// never logged.
    #[serde(default)]
    pub properties: BTreeMap<String, Secret>,
    /// What a record's consumers may rely on: `at_least_once` (the
    /// default: an idempotent producer; a crash may write a change again)
    /// or `exactly_once` (each shard's batches and checkpoints are Kafka
    /// transactions: `read_committed` consumers see every change once).
    #[serde(default)]
    pub delivery: Delivery,
    /// With `exactly_once`: the start of every `transactional.id` and
    /// checkpoint consumer-group id of this sink (`<prefix>.<table>.<shard>…`);
    /// defaults to `dynamo-cdc.<sink name>`. Workers that share shards
    /// through a lease table must use the same prefix.
    pub transactional_id_prefix: Option<String>,
    /// With `exactly_once`: the topic whose partitions' consumer-group
    /// offsets hold each shard's checkpoint (it holds no records); created
    /// with the partitions it needs when missing. Defaults to
    /// `<transactional_id_prefix>.checkpoints`.
    pub checkpoint_topic: Option<String>,
    /// With `exactly_once`: how long one transaction step (start, commit,
    /// abort, checkpoint read) may take, and the broker's
    /// `transaction.timeout.ms`.
    #[serde(default = "default_transaction_timeout", with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub transaction_timeout: Duration,
    /// Batching.
    #[serde(default)]
    pub batch: BatchConfig,
}

/// The `kafka` sink's delivery guarantee.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// An idempotent producer with `acks=all`; after a crash, changes
    /// written since the last checkpoint are written again.
    #[default]
    AtLeastOnce,
    /// One Kafka transaction per shard and batch, holding the records and
    /// the shard's checkpoint (a transactional consumer-group offset).
    ExactlyOnce,
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

fn default_transaction_timeout() -> Duration {
    Duration::from_secs(60)
}

/// Properties the sink sets itself: delivery would not be what it promises otherwise.
pub const FIXED_PROPERTIES: [&str; 7] = [
    "bootstrap.servers",
    "enable.idempotence",
    "acks",
    "queue.buffering.max.messages",
    "transactional.id",
    "transaction.timeout.ms",
    "group.id",
];

impl KafkaSinkConfig {
    /// The start of the sink's transactional and checkpoint group ids.
    pub fn transactional_prefix(&self, sink_name: &str) -> String {
        self.transactional_id_prefix
            .clone()
            .unwrap_or_else(|| format!("dynamo-cdc.{sink_name}"))
    }

    /// The topic that keys the sink's checkpoints.
    pub fn checkpoint_topic(&self, sink_name: &str) -> String {
        self.checkpoint_topic
            .clone()
            .unwrap_or_else(|| format!("{}.checkpoints", self.transactional_prefix(sink_name)))
    }
}

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
        if let Some(prefix) = &self.transactional_id_prefix {
            let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if prefix.is_empty() || prefix.len() > 200 || !prefix.chars().all(legal) {
                return Err(InvalidField::new(
                    "transactional_id_prefix",
                    format!("{prefix:?} must be 1-200 letters, digits, . _ -"),
                ));
            }
        }
        if let Some(topic) = &self.checkpoint_topic {
            let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if topic.is_empty() || topic.len() > 249 || !topic.chars().all(legal) {
                return Err(InvalidField::new(
                    "checkpoint_topic",
                    format!("{topic:?} is not a valid topic name: letters, digits, . _ -"),
                ));
            }
        }
        if self.transaction_timeout < Duration::from_secs(1) {
            return Err(InvalidField::new(
                "transaction_timeout",
                "must be at least 1s",
            ));
        }
        if let Some(fixed) = self
            .properties
            .keys()
            .find(|k| FIXED_PROPERTIES.contains(&k.as_str()))
        {
            return Err(InvalidField::new(
                format!("properties.{fixed:?}"),
                "is set by the sink (brokers, idempotent delivery with acks=all, queue_max_messages, transactions: transactional_id_prefix and transaction_timeout)",
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
