//! Against tansu (Kafka protocol): the test helpers of `common::kafka`, on
//! records produced by a plain confluent-kafka producer.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::kafka::{self, Record};

/// Creates `topic` with two partitions and produces, in order: `a` = `1`
/// (with a header), `b` = `2`, and a tombstone for `a`.
const PRODUCE: &str = r#"
import sys
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

brokers, topic = sys.argv[1:3]
admin = AdminClient({"bootstrap.servers": brokers})  # kept alive until the topic exists
admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(timeout=30)
producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True})
errors = []
def delivered(err, msg):
    if err is not None:
        errors.append(err)
producer.produce(topic, key="a", value="1", headers=[("source", b"harness")], on_delivery=delivered)
producer.produce(topic, key="b", value="2", on_delivery=delivered)
producer.produce(topic, key="a", value=None, on_delivery=delivered)
if producer.flush(30) != 0 or errors:
    sys.exit(f"produce failed: {errors or 'flush timed out'}")
"#;

fn produce(topic: &str) {
    let output = Command::new(kafka::python())
        .args(["-c", PRODUCE])
        .arg(kafka::brokers())
        .arg(topic)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "producing to {topic} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn record(partition: i32, offset: i64, key: &str, value: Option<&str>) -> Record {
    Record {
        partition,
        offset,
        key: Some(key.to_owned()),
        value: value.map(str::to_owned),
        headers: BTreeMap::new(),
    }
}

#[test]
fn read_topic_returns_every_record_in_order_and_last_by_key_keeps_tombstones() {
    let topic = format!("{}.events", kafka::unique_topic_prefix("harness"));
    produce(&topic);

    for isolation in ["read_committed", "read_uncommitted"] {
        let records = kafka::read_topic(&topic, isolation);
        assert_eq!(records.len(), 3, "{isolation}: {records:?}");
        let order: Vec<(i32, i64)> = records.iter().map(|r| (r.partition, r.offset)).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "{isolation}: sorted by (partition, offset)");

        let a: Vec<&Record> = records
            .iter()
            .filter(|r| r.key.as_deref() == Some("a"))
            .collect();
        assert_eq!(a.len(), 2, "{isolation}: {records:?}");
        assert_eq!(a[0].partition, a[1].partition, "one key, one partition");
        assert!(a[0].offset < a[1].offset);
        assert_eq!(a[0].value.as_deref(), Some("1"));
        assert_eq!(
            a[0].headers,
            BTreeMap::from([("source".to_owned(), "harness".to_owned())])
        );
        assert_eq!(a[1].value, None, "the tombstone");
        assert!(a[1].headers.is_empty());

        assert_eq!(
            kafka::last_by_key(&records),
            BTreeMap::from([
                ("a".to_owned(), None),
                ("b".to_owned(), Some("2".to_owned()))
            ]),
            "{isolation}"
        );
    }
}

#[test]
#[should_panic(expected = "does not exist")]
fn read_topic_panics_on_an_unknown_topic() {
    let topic = format!("{}.missing", kafka::unique_topic_prefix("harness"));
    kafka::read_topic(&topic, "read_committed");
}

#[test]
fn last_by_key_takes_the_highest_offset_whatever_the_order() {
    let records = [
        record(1, 7, "x", Some("late")),
        record(0, 3, "y", None),
        record(1, 2, "x", Some("early")),
        record(0, 1, "y", Some("first")),
    ];
    assert_eq!(
        kafka::last_by_key(&records),
        BTreeMap::from([
            ("x".to_owned(), Some("late".to_owned())),
            ("y".to_owned(), None),
        ])
    );
}

#[test]
#[should_panic(expected = "is in partitions 0 and 1")]
fn last_by_key_rejects_a_key_in_two_partitions() {
    kafka::last_by_key(&[record(0, 0, "x", Some("1")), record(1, 0, "x", Some("2"))]);
}

#[test]
fn unique_topic_prefixes_differ_and_make_valid_topic_names() {
    let one = kafka::unique_topic_prefix("orders_v1");
    let two = kafka::unique_topic_prefix("orders_v1");
    assert_ne!(one, two);
    for prefix in [one, two] {
        assert!(prefix.starts_with("orders_v1-"), "{prefix}");
        assert!(prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
    }
}
