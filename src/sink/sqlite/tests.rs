//! Versioned-upsert semantics of the SQLite replica, on a temporary file.

use std::sync::Arc;
use std::time::Duration;

use super::SqliteSink;
use super::SqliteSinkConfig;
use crate::coordinator::{AckTracker, Chunk, ShardKey};
use crate::model::{
    AttributeValue, ChangeEvent, Item, KeyKind, Op, Position, SequenceNumber, TableSchema,
};
use crate::sink::BatchConfig;
use crate::sink::{Batch, SinkWriter};

fn schema() -> TableSchema {
    TableSchema::new("orders", &[("pk", KeyKind::S)])
}

fn event(op: Op, pk: &str, sequence: u64, value: &str) -> ChangeEvent {
    let keys = Item::from([("pk".to_owned(), AttributeValue::S(pk.into()))]);
    let mut image = keys.clone();
    image.insert("v".into(), AttributeValue::S(value.into()));
    ChangeEvent {
        table: Arc::from("orders"),
        op,
        keys,
        new_image: op.is_upsert().then_some(image.into()),
        old_image: None,
        position: Position {
            shard: Arc::from("s"),
            sequence: SequenceNumber::parse(&format!("{sequence:021}")).unwrap(),
        },
        version: SequenceNumber::parse(&format!("{sequence:021}")).unwrap(),
        approx_time_ms: None,
        ttl_delete: false,
        event_id: format!("e{sequence}"),
        size_bytes: 10,
    }
}

fn batch(events: Vec<ChangeEvent>) -> Batch {
    let tracker = AckTracker::new();
    let key = ShardKey {
        stream: Arc::from("arn"),
        shard: Arc::from("s"),
    };
    tracker.open_shard(key.clone(), Arc::from("orders"), None);
    let last = events.last().unwrap().position.sequence.clone();
    let ack = tracker.register(&key, last, 1, None).unwrap();
    Batch {
        chunks: vec![Arc::new(Chunk {
            table: Arc::from("orders"),
            events,
            bytes: 0,
            ack,
            sweep_below: None,
        })],
    }
}

fn rows(path: &std::path::Path) -> Vec<(String, Option<String>, i64)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT pk, json_extract(_item, '$.v.S'), _deleted FROM orders ORDER BY pk")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn config(path: &std::path::Path, purge: Option<Duration>) -> SqliteSinkConfig {
    SqliteSinkConfig {
        name: None,
        path: path.to_owned(),
        purge_tombstones_after: purge,
        batch: BatchConfig::default(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replays_never_regress_and_tombstones_block_resurrection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let mut sink = SqliteSink::open("sqlite", &config(&path, None), &[schema()]).unwrap();
    sink.write(batch(vec![
        event(Op::Insert, "a", 1, "a1"),
        event(Op::Insert, "b", 2, "b1"),
        event(Op::Modify, "a", 3, "a2"),
        event(Op::Remove, "b", 4, ""),
    ]))
    .await
    .unwrap();
    assert_eq!(
        rows(&path),
        [("a".into(), Some("a2".into()), 0), ("b".into(), None, 1)]
    );
    // A replay of older changes changes nothing.
    sink.write(batch(vec![
        event(Op::Insert, "a", 1, "a1"),
        event(Op::Insert, "b", 2, "b1"),
    ]))
    .await
    .unwrap();
    assert_eq!(
        rows(&path),
        [("a".into(), Some("a2".into()), 0), ("b".into(), None, 1)]
    );
    // A newer re-insert brings the item back.
    sink.write(batch(vec![event(Op::Insert, "b", 5, "b2")]))
        .await
        .unwrap();
    assert_eq!(rows(&path)[1], ("b".into(), Some("b2".into()), 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn records_that_do_not_fit_are_rejected_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let mut sink = SqliteSink::open("sqlite", &config(&path, None), &[schema()]).unwrap();
    let mut wrong_key = event(Op::Insert, "x", 1, "x");
    wrong_key.keys = Item::from([(
        "pk".to_owned(),
        AttributeValue::N(crate::model::Number::parse("1").unwrap()),
    )]);
    let mut no_image = event(Op::Modify, "y", 2, "y");
    no_image.new_image = None;
    let rejected = sink
        .write(batch(vec![
            wrong_key,
            no_image,
            event(Op::Insert, "z", 3, "z"),
        ]))
        .await
        .unwrap();
    assert_eq!(rejected.len(), 2);
    assert!(
        rejected[0].reason.contains("key attribute \"pk\" is N"),
        "{rejected:?}"
    );
    assert!(rejected[1].reason.contains("no new image"), "{rejected:?}");
    assert_eq!(rows(&path), [("z".into(), Some("z".into()), 0)]);
}

#[test]
fn existing_table_with_other_columns_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY, name TEXT)")
        .unwrap();
    let err = SqliteSink::open("sqlite", &config(&path, None), &[schema()])
        .err()
        .expect("refused");
    assert!(err.to_string().contains("exists with columns"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tombstones_are_purged_after_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let retention = Duration::from_millis(5);
    let mut sink =
        SqliteSink::open("sqlite", &config(&path, Some(retention)), &[schema()]).unwrap();
    sink.write(batch(vec![
        event(Op::Insert, "a", 1, "a1"),
        event(Op::Insert, "b", 2, "b1"),
        event(Op::Remove, "b", 3, ""),
    ]))
    .await
    .unwrap();
    assert_eq!(rows(&path).len(), 2);
    // Later writes purge the tombstone once it is older than the retention.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut pacing = tokio::time::interval(retention);
    while rows(&path).len() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "tombstone never purged"
        );
        pacing.tick().await;
        sink.write(batch(vec![event(Op::Modify, "a", 4, "a2")]))
            .await
            .unwrap();
    }
    assert_eq!(rows(&path), [("a".into(), Some("a2".into()), 0)]);
}
