//! Writes batches to Kafka: one keyed record per change (a tombstone after a
//! delete). At least once: through an idempotent producer with `acks=all`;
//! a batch is done when every record's delivery report says so; a record
//! the broker refuses as too large is dead-lettered, any other failure
//! retries the batch. Exactly once: see [`super::exactly_once`].

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};
use tokio::sync::oneshot;

use super::config::{Delivery, KafkaSinkConfig};
use super::exactly_once::ExactlyOnce;
use super::records::{Encoding, OutRecord};
use super::scope::CHECKPOINT_PARTITIONS;
use super::transaction::Opener;
use crate::metric_names as names;
use crate::sink::registry::SinkEnv;
use crate::sink::{Batch, Rejected, SinkError, SinkWriter};

/// A record's delivery report: written, or why not.
pub(super) type Report = Result<(), KafkaError>;

/// Hands each delivery report to the batch that waits for it, without
/// copying the record (rdkafka's `FutureProducer` copies every delivered
/// record into an owned message).
pub(super) struct Reports;

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<oneshot::Sender<Report>>;

    fn delivery(&self, result: &DeliveryResult<'_>, report: Self::DeliveryOpaque) {
        let _ = report.send(result.as_ref().map(|_| ()).map_err(|(err, _)| err.clone()));
    }
}

/// The `kafka` sink.
pub struct KafkaSink {
    name: String,
    topics: Topics,
    encoding: Encoding,
    mode: Mode,
}

/// How the sink delivers.
enum Mode {
    AtLeastOnce(ThreadedProducer<Reports>),
    ExactlyOnce(ExactlyOnce),
}

/// The topic of each table.
pub(super) struct Topics {
    by_table: HashMap<String, String>,
    template: String,
}

impl Topics {
    /// The topic of `table`'s records.
    pub fn topic(&self, table: &str) -> std::borrow::Cow<'_, str> {
        match self.by_table.get(table) {
            Some(topic) => std::borrow::Cow::Borrowed(topic),
            None => std::borrow::Cow::Owned(self.template.replace("{table}", table)),
        }
    }
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("name", &self.name)
            .finish()
    }
}

/// The librdkafka settings of the producer (secrets included: never log them).
fn client_config(config: &KafkaSinkConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "queue.buffering.max.messages",
            config.queue_max_messages.to_string(),
        )
        .set(
            "delivery.timeout.ms",
            config.delivery_timeout.as_millis().to_string(),
        )
        .set("linger.ms", "5")
        // librdkafka's default (10 s) held a recovered broker idle for up to
        // 10 s after an outage; `properties` may still override it.
        .set("reconnect.backoff.max.ms", "2000");
    for (name, value) in &config.properties {
        client.set(name, value.expose());
    }
    client
}

impl KafkaSink {
    /// Builds the producer (with `exactly_once`, the settings of the
    /// per-shard producers) and, with `create_topics`, creates missing topics.
    pub async fn connect(env: SinkEnv<'_>, config: &KafkaSinkConfig) -> Result<Self, SinkError> {
        let fatal = SinkError::fatal_of(env.name);
        let client = client_config(config);
        let by_table: HashMap<String, String> = env
            .tables
            .iter()
            .map(|t| (t.name.to_string(), config.topic.replace("{table}", &t.name)))
            .collect();
        let mode = match config.delivery {
            Delivery::AtLeastOnce => Mode::AtLeastOnce(
                client
                    .create_with_context(Reports)
                    .map_err(|err| fatal(format!("cannot create the Kafka producer: {err}")))?,
            ),
            Delivery::ExactlyOnce => {
                Mode::ExactlyOnce(ExactlyOnce::new(env.name, opener(env.name, config)))
            }
        };
        if config.create_topics {
            create_topics(&client, config, by_table.values())
                .await
                .map_err(fatal)?;
        }
        if let Mode::ExactlyOnce(writer) = &mode {
            ensure_checkpoint_topic(&client, config, writer.checkpoint_topic())
                .await
                .map_err(fatal)?;
        }
        Ok(Self {
            name: env.name.to_owned(),
            topics: Topics {
                by_table,
                template: config.topic.clone(),
            },
            encoding: Encoding {
                envelope: config.envelope,
                tombstones: config.tombstones,
            },
            mode,
        })
    }
}

/// The settings of the exactly-once producers and their checkpoint reader.
fn opener(sink: &str, config: &KafkaSinkConfig) -> Opener {
    let mut producer = client_config(config);
    // librdkafka requires a record's delivery limit within the transaction's.
    let delivery = config.delivery_timeout.min(config.transaction_timeout);
    producer
        .set(
            "transaction.timeout.ms",
            config.transaction_timeout.as_millis().to_string(),
        )
        .set("delivery.timeout.ms", delivery.as_millis().to_string());
    let mut consumer = ClientConfig::new();
    consumer
        .set("bootstrap.servers", &config.brokers)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed");
    for (name, value) in &config.properties {
        consumer.set(name, value.expose());
    }
    Opener {
        producer,
        consumer,
        prefix: config.transactional_prefix(sink),
        checkpoint_topic: config.checkpoint_topic(sink),
        timeout: config.transaction_timeout,
    }
}

/// Creates the checkpoint topic when missing and checks it has the
/// partitions a checkpoint needs.
async fn ensure_checkpoint_topic(
    client: &ClientConfig,
    config: &KafkaSinkConfig,
    topic: &str,
) -> Result<(), String> {
    let partitions = CHECKPOINT_PARTITIONS as i32;
    let wanted = KafkaSinkConfig {
        partitions,
        ..config.clone()
    };
    create_topics(client, &wanted, std::iter::once(&topic.to_owned())).await?;
    let (client, name, timeout) = (client.clone(), topic.to_owned(), config.transaction_timeout);
    let found = tokio::task::spawn_blocking(move || {
        let probe: BaseProducer = client
            .create()
            .map_err(|err| format!("cannot create a Kafka client: {err}"))?;
        let metadata = probe
            .client()
            .fetch_metadata(Some(&name), timeout)
            .map_err(|err| format!("cannot read the metadata of topic {name}: {err}"))?;
        Ok::<usize, String>(
            metadata
                .topics()
                .first()
                .map_or(0, |t| t.partitions().len()),
        )
    })
    .await
    .map_err(|err| format!("metadata task failed: {err}"))??;
    if found < CHECKPOINT_PARTITIONS {
        return Err(format!(
            "checkpoint topic {topic} has {found} partition(s); exactly-once needs {CHECKPOINT_PARTITIONS} (delete it, or name another with checkpoint_topic)"
        ));
    }
    Ok(())
}

/// Creates the topics that do not exist yet.
async fn create_topics<'a>(
    client: &ClientConfig,
    config: &KafkaSinkConfig,
    topics: impl Iterator<Item = &'a String>,
) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = client
        .create()
        .map_err(|err| format!("cannot create the Kafka admin client: {err}"))?;
    let wanted: Vec<NewTopic<'_>> = topics
        .map(|topic| {
            NewTopic::new(
                topic,
                config.partitions,
                TopicReplication::Fixed(config.replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&wanted, &options)
        .await
        .map_err(|err| format!("cannot create topics: {err}"))?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(%topic, "created the topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(format!("cannot create topic {topic}: {code}")),
        }
    }
    Ok(())
}

/// One record on its way: where it came from and its delivery report.
struct InFlight {
    slot: (usize, usize),
    delivery: oneshot::Receiver<Report>,
}

impl SinkWriter for KafkaSink {
    async fn write(&mut self, batch: Batch) -> Result<Vec<Rejected>, SinkError> {
        match &mut self.mode {
            Mode::AtLeastOnce(producer) => {
                at_least_once(&self.name, producer, &self.topics, self.encoding, &batch).await
            }
            Mode::ExactlyOnce(writer) => writer.write(&batch, self.encoding, &self.topics).await,
        }
    }
}

/// Writes a batch through the idempotent producer; done when every record's
/// delivery report says so.
async fn at_least_once(
    sink: &str,
    producer: &ThreadedProducer<Reports>,
    topics: &Topics,
    encoding: Encoding,
    batch: &Batch,
) -> Result<Vec<Rejected>, SinkError> {
    let now_ms = crate::clock::now_ms();
    let mut rejected = Vec::new();
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut outcome = Outcome::default();
    for (slot, event) in batch.events() {
        let topic = topics.topic(&event.table);
        let encoded = match encoding.encode(event, now_ms) {
            Ok(encoded) => encoded,
            Err(reason) => {
                rejected.push(refusal(slot, reason));
                continue;
            }
        };
        let OutRecord {
            key,
            value,
            headers,
        } = encoded.change;
        let change = (key.as_str(), value.as_deref(), headers);
        enqueue(
            sink,
            producer,
            &topic,
            slot,
            change,
            &mut in_flight,
            &mut outcome,
        )
        .await;
        if encoded.tombstone {
            let tombstone = (key.as_str(), None, None);
            enqueue(
                sink,
                producer,
                &topic,
                slot,
                tombstone,
                &mut in_flight,
                &mut outcome,
            )
            .await;
        }
    }
    metrics::gauge!(names::SINK_QUEUE_DEPTH, "sink" => sink.to_owned())
        .set(producer.in_flight_count() as f64);
    while let Some(flight) = in_flight.pop_front() {
        outcome.settle(flight, sink).await;
    }
    metrics::gauge!(names::SINK_QUEUE_DEPTH, "sink" => sink.to_owned())
        .set(producer.in_flight_count() as f64);
    outcome.finish(sink, rejected)
}

/// Queues one record; when the producer's queue is full, waits for the
/// oldest deliveries first (the readers slow down instead of memory growing).
async fn enqueue(
    sink: &str,
    producer: &ThreadedProducer<Reports>,
    topic: &str,
    slot: (usize, usize),
    (key, value, headers): (&str, Option<&str>, Option<OwnedHeaders>),
    in_flight: &mut VecDeque<InFlight>,
    outcome: &mut Outcome,
) {
    let (report, delivery) = oneshot::channel();
    let mut base = BaseRecord::with_opaque_to(topic, Box::new(report)).key(key);
    if let Some(value) = value {
        base = base.payload(value);
    }
    if let Some(headers) = headers {
        base = base.headers(headers);
    }
    loop {
        match producer.send(base) {
            Ok(()) => {
                in_flight.push_back(InFlight { slot, delivery });
                outcome.produced += 1;
                return;
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                base = back;
                match in_flight.pop_front() {
                    Some(flight) => outcome.settle(flight, sink).await,
                    None => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
            Err((err, _)) => {
                outcome.failed(slot, &err);
                return;
            }
        }
    }
}

/// What the delivery reports of one batch said.
#[derive(Default)]
struct Outcome {
    produced: u64,
    delivered: u64,
    too_large: Vec<((usize, usize), String)>,
    failure: Option<String>,
}

impl Outcome {
    async fn settle(&mut self, flight: InFlight, sink: &str) {
        match flight.delivery.await {
            Ok(Ok(())) => self.delivered += 1,
            Ok(Err(err)) => self.failed(flight.slot, &err),
            Err(_) => {
                self.failure = Some(format!("{sink}: the producer dropped a delivery report"))
            }
        }
    }

    fn failed(&mut self, slot: (usize, usize), err: &KafkaError) {
        let too_large = matches!(
            err.rdkafka_error_code(),
            Some(RDKafkaErrorCode::MessageSizeTooLarge)
        );
        if too_large {
            self.too_large.push((slot, err.to_string()));
        } else {
            self.failure = Some(err.to_string());
        }
    }

    fn finish(self, sink: &str, mut rejected: Vec<Rejected>) -> Result<Vec<Rejected>, SinkError> {
        metrics::counter!(names::SINK_ITEMS, "sink" => sink.to_owned(), "result" => "produced")
            .increment(self.produced);
        metrics::counter!(names::SINK_ITEMS, "sink" => sink.to_owned(), "result" => "delivered")
            .increment(self.delivered);
        if let Some(message) = self.failure {
            metrics::counter!(names::SINK_ITEMS, "sink" => sink.to_owned(), "result" => "failed")
                .increment(1);
            return Err(SinkError::Transient {
                sink: sink.to_owned(),
                message: format!("a record was not delivered: {message}"),
            });
        }
        for (slot, reason) in self.too_large {
            metrics::counter!(names::SINK_ITEMS, "sink" => sink.to_owned(), "result" => "refused")
                .increment(1);
            rejected.push(refusal(
                slot,
                format!("the broker refused the record: {reason}"),
            ));
        }
        Ok(rejected)
    }
}

fn refusal(slot: (usize, usize), reason: String) -> Rejected {
    Rejected {
        chunk: slot.0,
        event: slot.1,
        reason,
    }
}
