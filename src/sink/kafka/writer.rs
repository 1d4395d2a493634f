//! Writes batches to Kafka: one keyed record per change (a tombstone after a
//! delete), through an idempotent producer with `acks=all`. A batch is done
//! when every record's delivery report says so; a record the broker refuses
//! as too large is dead-lettered, any other failure retries the batch.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use tokio::sync::oneshot;

use super::config::KafkaSinkConfig;
use super::envelope::{record_key, record_value, Envelope};
use crate::metric_names as names;
use crate::sink::registry::SinkEnv;
use crate::sink::{Batch, Rejected, SinkError, SinkWriter};

/// A record's delivery report: written, or why not.
type Report = Result<(), KafkaError>;

/// Hands each delivery report to the batch that waits for it, without
/// copying the record (rdkafka's `FutureProducer` copies every delivered
/// record into an owned message).
struct Reports;

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
    producer: ThreadedProducer<Reports>,
    topics: HashMap<String, String>,
    template: String,
    envelope: Envelope,
    tombstones: bool,
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
    /// Builds the producer and, with `create_topics`, creates missing topics.
    pub async fn connect(env: SinkEnv<'_>, config: &KafkaSinkConfig) -> Result<Self, SinkError> {
        let fatal = |message: String| SinkError::Fatal {
            sink: env.name.to_owned(),
            message,
        };
        let client = client_config(config);
        let producer: ThreadedProducer<Reports> = client
            .create_with_context(Reports)
            .map_err(|err| fatal(format!("cannot create the Kafka producer: {err}")))?;
        let topics: HashMap<String, String> = env
            .tables
            .iter()
            .map(|t| (t.name.to_string(), config.topic.replace("{table}", &t.name)))
            .collect();
        if config.create_topics {
            create_topics(&client, config, topics.values())
                .await
                .map_err(fatal)?;
        }
        Ok(Self {
            name: env.name.to_owned(),
            producer,
            topics,
            template: config.topic.clone(),
            envelope: config.envelope,
            tombstones: config.tombstones,
        })
    }

    fn topic(&self, table: &str) -> std::borrow::Cow<'_, str> {
        match self.topics.get(table) {
            Some(topic) => std::borrow::Cow::Borrowed(topic),
            None => std::borrow::Cow::Owned(self.template.replace("{table}", table)),
        }
    }
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
        let now_ms = crate::coordinator::store::now_ms();
        let mut rejected = Vec::new();
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut outcome = Outcome::default();
        for (slot, event) in batch.events() {
            let topic = self.topic(&event.table);
            let key = record_key(event);
            let value = match record_value(event, self.envelope, now_ms) {
                Ok(value) => value,
                Err(reason) => {
                    rejected.push(refusal(slot, reason));
                    continue;
                }
            };
            let headers = OwnedHeaders::new_with_capacity(3)
                .insert(Header {
                    key: "op",
                    value: Some(event.op.as_str()),
                })
                .insert(Header {
                    key: "table",
                    value: Some(&*event.table),
                })
                .insert(Header {
                    key: "sequence",
                    value: Some(event.position.sequence.as_str()),
                });
            let mut records = vec![(value, Some(headers))];
            if !event.op.is_upsert() && self.tombstones && self.envelope != Envelope::Plain {
                records.push((None, None));
            }
            for (value, headers) in records {
                let (report, delivery) = oneshot::channel();
                let mut record = BaseRecord::with_opaque_to(&topic, Box::new(report)).key(&key);
                if let Some(value) = &value {
                    record = record.payload(value);
                }
                if let Some(headers) = headers {
                    record = record.headers(headers);
                }
                self.enqueue(slot, record, delivery, &mut in_flight, &mut outcome)
                    .await;
            }
        }
        metrics::gauge!(names::SINK_QUEUE_DEPTH, "sink" => self.name.clone())
            .set(self.producer.in_flight_count() as f64);
        while let Some(flight) = in_flight.pop_front() {
            outcome.settle(flight, &self.name).await;
        }
        metrics::gauge!(names::SINK_QUEUE_DEPTH, "sink" => self.name.clone())
            .set(self.producer.in_flight_count() as f64);
        outcome.finish(&self.name, rejected)
    }
}

impl KafkaSink {
    /// Queues one record; when the producer's queue is full, waits for the
    /// oldest deliveries first (the readers slow down instead of memory growing).
    async fn enqueue(
        &self,
        slot: (usize, usize),
        mut record: BaseRecord<'_, String, String, Box<oneshot::Sender<Report>>>,
        delivery: oneshot::Receiver<Report>,
        in_flight: &mut VecDeque<InFlight>,
        outcome: &mut Outcome,
    ) {
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    in_flight.push_back(InFlight { slot, delivery });
                    outcome.produced += 1;
                    return;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    match in_flight.pop_front() {
                        Some(flight) => outcome.settle(flight, &self.name).await,
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
