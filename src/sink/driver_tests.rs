//! The sink driver with a scripted in-memory writer: batching, retries, acks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{run_sink, Batch, Rejected, SinkContext, SinkError, SinkWriter};
use crate::coordinator::{AckTracker, Chunk, ShardKey};
use crate::dead_letter::DeadLetters;
use crate::model::{AttributeValue, ChangeEvent, Item, Op, Position, SequenceNumber};
use crate::sink::BatchConfig;
use crate::stats::Stats;

/// Plays back scripted results and records batch sizes.
struct Scripted {
    results: VecDeque<Result<Vec<Rejected>, SinkError>>,
    batches: Arc<Mutex<Vec<usize>>>,
}

impl SinkWriter for Scripted {
    async fn write(&mut self, batch: Batch) -> Result<Vec<Rejected>, SinkError> {
        self.batches.lock().unwrap().push(batch.len());
        self.results.pop_front().unwrap_or(Ok(Vec::new()))
    }
}

fn key() -> ShardKey {
    ShardKey {
        stream: Arc::from("arn"),
        shard: Arc::from("s"),
    }
}

fn chunk(tracker: &Arc<AckTracker>, sequence: u64, records: usize) -> Arc<Chunk> {
    let events = (0..records)
        .map(|i| ChangeEvent {
            table: Arc::from("t"),
            op: Op::Insert,
            keys: Item::from([(
                "pk".to_owned(),
                AttributeValue::S(format!("{sequence}-{i}")),
            )]),
            new_image: None,
            old_image: None,
            position: Position {
                shard: Arc::from("s"),
                sequence: SequenceNumber::parse(&sequence.to_string()).unwrap(),
            },
            version: SequenceNumber::parse(&sequence.to_string()).unwrap(),
            approx_time_ms: None,
            ttl_delete: false,
            event_id: String::new(),
            size_bytes: 1,
        })
        .collect();
    let ack = tracker
        .register(
            &key(),
            SequenceNumber::parse(&sequence.to_string()).unwrap(),
            1,
            None,
        )
        .unwrap();
    Arc::new(Chunk {
        table: Arc::from("t"),
        events,
        bytes: records as u64,
        ack,
        sweep_below: None,
    })
}

fn context(dir: &std::path::Path, max_records: usize) -> SinkContext {
    SinkContext {
        name: "scripted".into(),
        batch: BatchConfig {
            max_records,
            max_age: Duration::from_secs(3600),
            max_retry_backoff: Duration::from_millis(5),
            ..BatchConfig::default()
        },
        dead_letters: Arc::new(DeadLetters::new(dir)),
        cancel: CancellationToken::new(),
        stats: Arc::new(Stats::default()),
    }
}

#[tokio::test]
async fn batches_close_at_max_records_and_retries_end_in_one_ack() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = AckTracker::new();
    tracker.open_shard(key(), Arc::from("t"), None);
    let batches = Arc::new(Mutex::new(Vec::new()));
    let writer = Scripted {
        results: VecDeque::from([
            Err(SinkError::Transient {
                sink: "scripted".into(),
                message: "busy".into(),
            }),
            Err(SinkError::Transient {
                sink: "scripted".into(),
                message: "busy".into(),
            }),
        ]),
        batches: Arc::clone(&batches),
    };
    let (tx, rx) = mpsc::channel(16);
    for sequence in 1..=4 {
        tx.send(chunk(&tracker, sequence, 3)).await.unwrap();
    }
    drop(tx);
    run_sink(writer, rx, context(dir.path(), 6)).await.unwrap();
    // Two failed attempts and one success for the first batch of 6, then the second batch.
    assert_eq!(*batches.lock().unwrap(), [6, 6, 6, 6]);
    assert_eq!(tracker.in_flight(), 0);
    let updates = tracker.take_updates();
    assert_eq!(updates[0].sequence.as_ref().unwrap().as_str(), "4");
}

#[tokio::test]
async fn fatal_errors_stop_the_sink_without_acks() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = AckTracker::new();
    tracker.open_shard(key(), Arc::from("t"), None);
    let writer = Scripted {
        results: VecDeque::from([Err(SinkError::Fatal {
            sink: "scripted".into(),
            message: "schema conflict".into(),
        })]),
        batches: Arc::new(Mutex::new(Vec::new())),
    };
    let (tx, rx) = mpsc::channel(16);
    tx.send(chunk(&tracker, 1, 2)).await.unwrap();
    drop(tx);
    let err = run_sink(writer, rx, context(dir.path(), 10))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("schema conflict"));
    assert_eq!(tracker.in_flight(), 1);
}

#[tokio::test]
async fn rejected_records_are_dead_lettered_and_the_chunk_acked() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = AckTracker::new();
    tracker.open_shard(key(), Arc::from("t"), None);
    let writer = Scripted {
        results: VecDeque::from([Ok(vec![Rejected {
            chunk: 0,
            event: 1,
            reason: "value too large".into(),
        }])]),
        batches: Arc::new(Mutex::new(Vec::new())),
    };
    let (tx, rx) = mpsc::channel(16);
    tx.send(chunk(&tracker, 7, 2)).await.unwrap();
    drop(tx);
    let ctx = context(dir.path(), 10);
    let letters = Arc::clone(&ctx.dead_letters);
    run_sink(writer, rx, ctx).await.unwrap();
    assert_eq!(tracker.in_flight(), 0);
    let text = std::fs::read_to_string(letters.path_for("t")).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(line["error"], "value too large");
    assert_eq!(line["stage"], "sink:scripted");
    assert_eq!(line["record"]["keys"]["pk"]["S"], "7-1");
}
