//! One scope's transactional producer and its transactions (blocking
//! calls: run them on the blocking pool). Opening initialises the
//! `transactional.id` — which fences any older producer of the scope and
//! aborts its open transaction — and only then reads the scope's committed
//! checkpoint, so the checkpoint read is final. A transaction holds the
//! scope's records and its new checkpoint, sent as transactional
//! consumer-group offsets of the checkpoint topic (see [`super::scope`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::oneshot;

use super::records::OutRecord;
use super::scope::{checkpoint_offsets, position_of, Scope, CHECKPOINT_PARTITIONS};
use super::writer::{Report, Reports};
use crate::model::SequenceNumber;

/// How to open scope producers.
#[derive(Clone)]
pub(super) struct Opener {
    /// The producer settings without `transactional.id`.
    pub producer: ClientConfig,
    /// The checkpoint reader's settings without `group.id`.
    pub consumer: ClientConfig,
    /// The start of every transactional id.
    pub prefix: String,
    /// The topic whose partitions' group offsets hold checkpoints.
    pub checkpoint_topic: String,
    /// Limit of each blocking step.
    pub timeout: Duration,
}

/// A scope's open producer, sole writer of the scope until fenced.
pub(super) struct TxnProducer {
    /// Its `transactional.id`.
    id: String,
    producer: ThreadedProducer<Reports>,
    group: ConsumerGroupMetadata,
    /// The scope's checkpoint as committed (read at opening, then moved by
    /// each commit of this producer).
    pub committed: Option<SequenceNumber>,
    /// When it last wrote, for closing idle producers.
    pub used: Instant,
}

/// Why a transaction step failed.
#[derive(Debug)]
pub(super) enum TxnFailure {
    /// Another producer took the scope's `transactional.id`: this one may
    /// never write the scope again.
    Fenced(String),
    /// Worth a retry with a new producer (broker unreachable, timeout, abort).
    Retry(String),
    /// Retrying cannot help (the checkpoint group holds something else).
    Fatal(String),
}

impl TxnFailure {
    fn of(step: &str, err: &KafkaError, producer: Option<&ThreadedProducer<Reports>>) -> Self {
        let message = format!("{step}: {err}");
        let fenced_codes = [
            RDKafkaErrorCode::Fenced,
            RDKafkaErrorCode::ProducerFenced,
            RDKafkaErrorCode::InvalidProducerEpoch,
        ];
        let mut codes = vec![err.rdkafka_error_code()];
        if let Some(producer) = producer {
            codes.push(producer.client().fatal_error().map(|(code, _)| code));
        }
        if codes.iter().flatten().any(|c| fenced_codes.contains(c)) {
            return Self::Fenced(message);
        }
        Self::Retry(message)
    }
}

impl Opener {
    /// Creates the producer of `scope`, initialises its transactions and
    /// reads the scope's committed checkpoint: its consumer group's offsets
    /// of the checkpoint topic.
    pub fn open(&self, scope: &Scope) -> Result<TxnProducer, TxnFailure> {
        let id = scope.transactional_id(&self.prefix);
        let producer: ThreadedProducer<Reports> = self
            .producer
            .clone()
            .set("transactional.id", &id)
            .create_with_context(Reports)
            .map_err(|err| TxnFailure::Fatal(format!("cannot create producer {id}: {err}")))?;
        producer
            .init_transactions(self.timeout)
            .map_err(|err| TxnFailure::of(&format!("initialising {id}"), &err, None))?;
        let consumer: BaseConsumer = self
            .consumer
            .clone()
            .set("group.id", &id)
            .create()
            .map_err(|err| {
                TxnFailure::Fatal(format!("cannot create the checkpoint reader: {err}"))
            })?;
        let found = consumer
            .committed_offsets(self.checkpoint_partitions(None), self.timeout)
            .map_err(|err| TxnFailure::Retry(format!("reading checkpoint group {id}: {err}")))?;
        let offsets: Vec<i64> = (0..CHECKPOINT_PARTITIONS)
            .map(|partition| {
                found
                    .find_partition(&self.checkpoint_topic, partition as i32)
                    .and_then(|p| p.offset().to_raw())
                    .unwrap_or(-1)
            })
            .collect();
        let committed = position_of(&offsets)
            .map_err(|err| TxnFailure::Fatal(format!("checkpoint group {id}: {err}")))?;
        let group = consumer.group_metadata().ok_or_else(|| {
            TxnFailure::Fatal(format!("no consumer-group metadata for group {id}"))
        })?;
        tracing::debug!(transactional_id = %id, checkpoint = ?committed, "transactional producer ready");
        Ok(TxnProducer {
            id,
            producer,
            group,
            committed,
            used: Instant::now(),
        })
    }
}

impl Opener {
    /// The checkpoint topic's partitions, at the offsets standing for
    /// `position` (unset offsets without one).
    fn checkpoint_partitions(&self, position: Option<&SequenceNumber>) -> TopicPartitionList {
        let mut list = TopicPartitionList::with_capacity(CHECKPOINT_PARTITIONS);
        let offsets = position.map(checkpoint_offsets);
        for partition in 0..CHECKPOINT_PARTITIONS {
            let mut element = list.add_partition(&self.checkpoint_topic, partition as i32);
            if let Some(offsets) = &offsets {
                // Setting a non-negative offset cannot fail.
                let _ = element.set_offset(Offset::Offset(offsets[partition]));
            }
        }
        list
    }
}

/// A record ready to send, with where it came from in the batch.
pub(super) struct Prepared {
    /// (chunk, event) in the batch.
    pub slot: (usize, usize),
    /// The record.
    pub record: OutRecord,
}

/// What a committed transaction did.
#[derive(Debug, Default)]
pub(super) struct Committed {
    /// Records the broker refused as too large (dead-lettered), by slot.
    pub too_large: Vec<((usize, usize), String)>,
    /// Records written.
    pub records: u64,
}

impl TxnProducer {
    /// Writes the records `prepare` hands to its callback (each is sent as
    /// it comes) to `topic` and moves the checkpoint to `position` in one
    /// transaction. Records the broker refuses as too large are left out:
    /// the transaction is aborted and run again with `prepare` given the
    /// refused ones (by slot) to leave out.
    pub fn transact(
        &mut self,
        opener: &Opener,
        topic: &str,
        mut prepare: impl FnMut(&HashMap<(usize, usize), String>, &mut dyn FnMut(Prepared)),
        position: &SequenceNumber,
    ) -> Result<Committed, TxnFailure> {
        let mut committed = Committed::default();
        loop {
            let refused: HashMap<(usize, usize), String> =
                committed.too_large.iter().cloned().collect();
            let records = |send: &mut dyn FnMut(Prepared)| prepare(&refused, send);
            match self.attempt(opener, topic, records, position)? {
                Attempt::Committed(written, refused_at_send) => {
                    committed.too_large.extend(refused_at_send);
                    committed.records = written;
                    self.committed = Some(position.clone());
                    self.used = Instant::now();
                    return Ok(committed);
                }
                Attempt::TooLarge(more) => committed.too_large.extend(more),
            }
        }
    }

    fn attempt(
        &self,
        opener: &Opener,
        topic: &str,
        mut records: impl FnMut(&mut dyn FnMut(Prepared)),
        position: &SequenceNumber,
    ) -> Result<Attempt, TxnFailure> {
        let timeout = opener.timeout;
        let fail = |step: &str, err: &KafkaError| TxnFailure::of(step, err, Some(&self.producer));
        self.producer
            .begin_transaction()
            .map_err(|err| fail("beginning a transaction", &err))?;
        let mut reports = Vec::new();
        let mut too_large = Vec::new();
        let mut failed = None;
        records(&mut |prepared: Prepared| {
            if failed.is_some() {
                return;
            }
            match self.send(topic, prepared.record, timeout) {
                Ok(report) => reports.push((prepared.slot, report)),
                Err(err) if is_too_large(&err) => too_large.push((prepared.slot, err.to_string())),
                Err(err) => failed = Some(err),
            }
        });
        if let Some(err) = failed {
            return Err(self.abort(fail("producing", &err), timeout));
        }
        let offsets = opener.checkpoint_partitions(Some(position));
        tracing::debug!(
            transactional_id = %self.id,
            records = reports.len(),
            position = %position,
            "committing a transaction"
        );
        let sent = self
            .producer
            .send_offsets_to_transaction(&offsets, &self.group, timeout)
            .and_then(|()| self.producer.commit_transaction(timeout));
        if sent.is_ok() {
            tracing::debug!(transactional_id = %self.id, position = %position, "transaction committed");
        }
        match sent {
            // Records refused at `send` (known too large before sending)
            // are left out; the rest is committed.
            Ok(()) => Ok(Attempt::Committed(reports.len() as u64, too_large)),
            Err(err) => {
                for (slot, mut report) in reports {
                    if let Ok(Err(refused)) = report.try_recv() {
                        if is_too_large(&refused) {
                            too_large.push((slot, refused.to_string()));
                        }
                    }
                }
                let failure = fail("committing", &err);
                if !too_large.is_empty() && !matches!(failure, TxnFailure::Fenced(_)) {
                    self.producer
                        .abort_transaction(timeout)
                        .map_err(|err| fail("aborting", &err))?;
                    return Ok(Attempt::TooLarge(too_large));
                }
                Err(self.abort(failure, timeout))
            }
        }
    }

    /// Sends one record in the open transaction, waiting while the
    /// producer's queue is full.
    fn send(
        &self,
        topic: &str,
        record: OutRecord,
        timeout: Duration,
    ) -> Result<oneshot::Receiver<Report>, KafkaError> {
        let (report, delivery) = oneshot::channel();
        let mut base = BaseRecord::with_opaque_to(topic, Box::new(report)).key(&record.key);
        if let Some(value) = &record.value {
            base = base.payload(value);
        }
        if let Some(headers) = record.headers {
            base = base.headers(headers);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.producer.send(base) {
                Ok(()) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    base = back;
                    let _ = self.producer.flush(Duration::from_millis(100));
                }
                Err((err, _)) => return Err(err),
            }
        }
    }

    /// Aborts the open transaction (best effort: a fenced or broken
    /// producer is dropped anyway) and passes `failure` on.
    fn abort(&self, failure: TxnFailure, timeout: Duration) -> TxnFailure {
        if !matches!(failure, TxnFailure::Fenced(_)) {
            let _ = self.producer.abort_transaction(timeout);
        }
        failure
    }
}

/// How one try of a transaction ended.
enum Attempt {
    /// Records written, and those refused before sending.
    Committed(u64, Vec<((usize, usize), String)>),
    TooLarge(Vec<((usize, usize), String)>),
}

fn is_too_large(err: &KafkaError) -> bool {
    matches!(
        err.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge)
    )
}
