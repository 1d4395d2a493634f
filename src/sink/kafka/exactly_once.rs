//! `delivery = "exactly_once"`: each batch is split by scope (a stream
//! shard or a snapshot segment); each scope's records and its new
//! checkpoint are one transaction of the scope's own producer, the scopes
//! of a batch committing side by side. Changes at or below a scope's
//! committed checkpoint were written by an earlier transaction (a replay
//! after a crash or a handover) and are skipped.
//!
//! Fencing: a worker that takes a shard's lease opens the shard's producer,
//! which fences the previous owner's (its open transaction is aborted, its
//! next step refused). Who owns a shard is the lease table's to say, not the
//! broker's: a fenced scope's part of the batch fails and is retried, and
//! the retry writes only chunks of shards this process still reads. The old
//! owner, which lost the lease, has stopped that shard's reader by then and
//! writes nothing more of it; an owner fenced by a late zombie (one that
//! opened its producer after losing the lease) opens again and goes on.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::records::Encoding;
use super::scope::Scope;
use super::transaction::{Opener, Prepared, TxnFailure, TxnProducer};
use super::writer::Topics;
use crate::coordinator::Chunk;
use crate::metric_names as names;
use crate::model::{ChangeEvent, Op, SequenceNumber};
use crate::sink::{Batch, Rejected, SinkError};

/// Producers unused this long are closed (their shards ended or moved).
const IDLE_AFTER: Duration = Duration::from_secs(300);

/// The exactly-once writer: one transactional producer per scope.
pub(super) struct ExactlyOnce {
    sink: String,
    opener: Arc<Opener>,
    producers: HashMap<Scope, Box<TxnProducer>>,
}

/// One scope's part of a batch.
struct ScopeWork {
    scope: Scope,
    topic: String,
    chunks: Vec<(usize, Arc<Chunk>)>,
}

/// How one scope's part of a batch ended.
enum ScopeOutcome {
    Committed {
        rejected: Vec<Rejected>,
        seconds: f64,
        records: u64,
    },
    Nothing,
    Fenced(String),
    Failed(TxnFailure),
}

impl ExactlyOnce {
    /// A writer whose producers `opener` opens; names itself `sink`.
    pub fn new(sink: &str, opener: Opener) -> Self {
        Self {
            sink: sink.to_owned(),
            opener: Arc::new(opener),
            producers: HashMap::new(),
        }
    }

    /// The topic whose group offsets hold the checkpoints.
    pub fn checkpoint_topic(&self) -> &str {
        &self.opener.checkpoint_topic
    }

    /// Writes `batch`, one transaction per scope.
    pub async fn write(
        &mut self,
        batch: &Batch,
        encoding: Encoding,
        topics: &Topics,
    ) -> Result<Vec<Rejected>, SinkError> {
        self.close_idle();
        let now_ms = crate::clock::now_ms();
        let mut tasks = tokio::task::JoinSet::new();
        for work in split(batch, topics) {
            let producer = self.producers.remove(&work.scope);
            let opener = Arc::clone(&self.opener);
            tasks.spawn_blocking(move || {
                let (producer, outcome) = run_scope(&opener, producer, &work, encoding, now_ms);
                (work, producer, outcome)
            });
        }
        let mut rejected = Vec::new();
        let mut failure = None;
        while let Some(joined) = tasks.join_next().await {
            let (work, producer, outcome) = joined.map_err(|err| SinkError::Fatal {
                sink: self.sink.clone(),
                message: format!("transaction task failed: {err}"),
            })?;
            if let Some(producer) = producer {
                self.producers.insert(work.scope.clone(), producer);
            }
            match outcome {
                ScopeOutcome::Committed {
                    rejected: refused,
                    seconds,
                    records,
                } => {
                    self.count("committed", Some(seconds));
                    metrics::counter!(names::SINK_ITEMS, "sink" => self.sink.clone(), "result" => "delivered")
                        .increment(records);
                    rejected.extend(refused);
                }
                ScopeOutcome::Nothing => {}
                ScopeOutcome::Fenced(message) => {
                    self.fenced(&work, &message);
                    failure = Some(message);
                }
                ScopeOutcome::Failed(TxnFailure::Fatal(message)) => {
                    return Err(SinkError::Fatal {
                        sink: self.sink.clone(),
                        message,
                    })
                }
                ScopeOutcome::Failed(TxnFailure::Retry(message) | TxnFailure::Fenced(message)) => {
                    self.count("aborted", None);
                    failure = Some(message);
                }
            }
        }
        match failure {
            Some(message) => Err(SinkError::Transient {
                sink: self.sink.clone(),
                message: format!("a transaction failed: {message}"),
            }),
            None => Ok(rejected),
        }
    }

    /// Logs a fenced scope: the batch is retried, and writes the scope again
    /// only if this process still reads the shard.
    fn fenced(&self, work: &ScopeWork, message: &str) {
        self.count("fenced", None);
        tracing::warn!(
            sink = %self.sink,
            shard = %work.scope.key.shard,
            table = %work.scope.table,
            "another producer took this shard's transactional id (fenced); the shard is written again only while this process owns it: {message}"
        );
    }

    fn count(&self, result: &'static str, seconds: Option<f64>) {
        metrics::counter!(names::KAFKA_TRANSACTIONS, "sink" => self.sink.clone(), "result" => result)
            .increment(1);
        if let Some(seconds) = seconds {
            metrics::histogram!(names::KAFKA_TRANSACTION_SECONDS, "sink" => self.sink.clone())
                .record(seconds);
        }
    }

    /// Closes producers idle for [`IDLE_AFTER`] (on the blocking pool:
    /// closing flushes and joins threads).
    fn close_idle(&mut self) {
        let idle: Vec<Scope> = self
            .producers
            .iter()
            .filter(|(_, p)| p.used.elapsed() > IDLE_AFTER)
            .map(|(scope, _)| scope.clone())
            .collect();
        for scope in idle {
            if let Some(producer) = self.producers.remove(&scope) {
                tokio::task::spawn_blocking(move || drop(producer));
            }
        }
    }
}

/// The batch's chunks by scope, in batch order within each; chunks with
/// no change, or of a shard this process no longer reads, are left out.
fn split(batch: &Batch, topics: &Topics) -> Vec<ScopeWork> {
    let mut works: Vec<ScopeWork> = Vec::new();
    let mut index: HashMap<Scope, usize> = HashMap::new();
    for (number, chunk) in batch.chunks.iter().enumerate() {
        if chunk.events.is_empty() || !chunk.ack.is_open() {
            continue;
        }
        let scope = Scope {
            key: chunk.ack.shard().clone(),
            table: Arc::clone(&chunk.table),
            snapshot: chunk
                .is_snapshot()
                .then(|| chunk.events[0].position.sequence.clone()),
        };
        let at = *index.entry(scope.clone()).or_insert_with(|| {
            works.push(ScopeWork {
                topic: topics.topic(&chunk.table).into_owned(),
                scope,
                chunks: Vec::new(),
            });
            works.len() - 1
        });
        works[at].chunks.push((number, Arc::clone(chunk)));
    }
    works
}

/// Opens the scope's producer when needed and writes its changes past the
/// committed checkpoint in one transaction. Returns the producer when it
/// may go on (a failed one is dropped: the next try opens a new one, which
/// settles whatever the failed one left open and reads the checkpoint again).
fn run_scope(
    opener: &Opener,
    producer: Option<Box<TxnProducer>>,
    work: &ScopeWork,
    encoding: Encoding,
    now_ms: i64,
) -> (Option<Box<TxnProducer>>, ScopeOutcome) {
    let still_read = work.chunks.iter().any(|(_, chunk)| chunk.ack.is_open());
    let mut producer = match producer {
        Some(producer) => producer,
        // The lease went while the batch waited: opening would fence the new owner.
        None if !still_read => return (None, ScopeOutcome::Nothing),
        None => match opener.open(&work.scope) {
            Ok(producer) => Box::new(producer),
            Err(TxnFailure::Fenced(message)) => return (None, ScopeOutcome::Fenced(message)),
            Err(failure) => return (None, ScopeOutcome::Failed(failure)),
        },
    };
    let committed = producer.committed.clone();
    let Some(position) = scope_position(work, committed.as_ref()) else {
        return (Some(producer), ScopeOutcome::Nothing);
    };
    let unencodable = RefCell::new(Vec::new());
    let records = |refused: &HashMap<(usize, usize), String>, send: &mut dyn FnMut(Prepared)| {
        unencodable.borrow_mut().clear();
        let encoding = (encoding, now_ms);
        records(work, committed.as_ref(), encoding, refused, &unencodable).for_each(send);
    };
    let started = Instant::now();
    let outcome = producer.transact(opener, &work.topic, records, &position);
    let mut rejected = unencodable.into_inner();
    match outcome {
        Ok(committed) => {
            rejected.extend(
                committed
                    .too_large
                    .into_iter()
                    .map(|(slot, reason)| Rejected {
                        chunk: slot.0,
                        event: slot.1,
                        reason: format!("the broker refused the record: {reason}"),
                    }),
            );
            let seconds = started.elapsed().as_secs_f64();
            let records = committed.records;
            (
                Some(producer),
                ScopeOutcome::Committed {
                    rejected,
                    seconds,
                    records,
                },
            )
        }
        Err(TxnFailure::Fenced(message)) => (None, ScopeOutcome::Fenced(message)),
        Err(failure) => (None, ScopeOutcome::Failed(failure)),
    }
}

/// The checkpoint the scope's transaction moves to: the end of its last
/// chunk past `committed` (`None` when every chunk is at or below it).
fn scope_position(work: &ScopeWork, committed: Option<&SequenceNumber>) -> Option<SequenceNumber> {
    work.chunks
        .iter()
        .map(|(_, chunk)| chunk.ack.position())
        .filter(|end| committed.is_none_or(|done| *end > done))
        .max()
        .cloned()
}

/// The records of the scope's changes past `committed`, encoded as they
/// are taken (so that sending overlaps encoding), leaving out the
/// `refused` slots; changes that cannot be encoded go to `rejected`.
fn records<'a>(
    work: &'a ScopeWork,
    committed: Option<&'a SequenceNumber>,
    (encoding, now_ms): (Encoding, i64),
    refused: &'a HashMap<(usize, usize), String>,
    rejected: &'a RefCell<Vec<Rejected>>,
) -> impl Iterator<Item = Prepared> + 'a {
    work.chunks
        .iter()
        // A chunk at or below the checkpoint was written whole before.
        .filter(move |(_, chunk)| committed.is_none_or(|done| chunk.ack.position() > done))
        .flat_map(|(number, chunk)| {
            let number = *number;
            chunk
                .events
                .iter()
                .enumerate()
                .map(move |(index, event)| ((number, index), event))
        })
        .filter(move |(slot, event)| {
            !committed.is_some_and(|done| passed(work, event, done)) && !refused.contains_key(slot)
        })
        .flat_map(move |(slot, event)| {
            let (change, tombstone) = match encoding.encode(event, now_ms) {
                Ok(encoded) => {
                    let tombstone = encoded.tombstone_record();
                    (Some(encoded.change), tombstone)
                }
                Err(reason) => {
                    rejected.borrow_mut().push(Rejected {
                        chunk: slot.0,
                        event: slot.1,
                        reason,
                    });
                    (None, None)
                }
            };
            change
                .into_iter()
                .chain(tombstone)
                .map(move |record| Prepared { slot, record })
        })
}

/// True when `event`, of a chunk ending past `committed`, was itself
/// written by an earlier transaction. Only a stream shard's records carry
/// positions of the scope (their sequence numbers); a snapshot page's carry
/// the snapshot's version, and replayed or loaded records the positions of
/// the shard they were first read from, while their scope counts chunks:
/// those are compared a chunk at a time, which the caller did.
fn passed(work: &ScopeWork, event: &ChangeEvent, committed: &SequenceNumber) -> bool {
    event.op != Op::Read
        && *event.position.shard == *work.scope.key.shard
        && event.position.sequence <= *committed
}
