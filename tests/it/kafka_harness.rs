//! Against tansu (Kafka protocol): the test helpers of `common::kafka`, on
//! records produced by plain and transactional confluent-kafka producers, and
//! the facts about tansu's transactions that the checkers rely on.

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;

use common::kafka::{self, ControlCounts, Record};

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

// The committed view (tests/kafka_committed.py), on transactions made by hand
// with tests/kafka_txn.py.

/// A fresh topic with `partitions` partitions on the shared broker.
fn txn_topic(name: &str, partitions: u32) -> String {
    let topic = format!("{}.{name}", kafka::unique_topic_prefix("txn"));
    kafka::kafka_txn(&["create", &kafka::brokers(), &topic, &partitions.to_string()]);
    topic
}

/// Runs the steps of tests/kafka_txn.py with a producer of `txn_id` on `topic`.
fn run_txn(topic: &str, txn_id: &str, steps: &[&str]) {
    let brokers = kafka::brokers();
    let mut args = vec!["run", &brokers, topic, txn_id];
    args.extend_from_slice(steps);
    kafka::kafka_txn(&args);
}

/// Starts the steps of tests/kafka_txn.py (the last one `ready`) and returns
/// the process once they are done; its transaction stays open.
fn start_txn(topic: &str, txn_id: &str, steps: &[&str]) -> std::process::Child {
    let brokers = kafka::brokers();
    let mut args = vec!["run", &brokers, topic, txn_id];
    args.extend_from_slice(steps);
    kafka::kafka_txn_until_ready(&args)
}

/// Ends a producer process the hard way (SIGKILL), as a crash would.
fn sigkill(mut child: std::process::Child) {
    child.kill().expect("SIGKILL the producer");
    child.wait().expect("producer status");
}

/// (partition, offset, key) of each record.
fn places(records: &[Record]) -> Vec<(i32, i64, &str)> {
    records
        .iter()
        .map(|r| (r.partition, r.offset, r.key.as_deref().unwrap_or("<none>")))
        .collect()
}

#[test]
fn committed_view_keeps_a_committed_transaction_in_every_partition_it_wrote() {
    let topic = txn_topic("commit", 2);
    run_txn(
        &topic,
        &format!("{topic}-producer"),
        &["begin", "send:a=1", "send:b=2@1", "send:c=-", "commit"],
    );

    let view = kafka::read_committed_view(&topic);
    assert_eq!(
        view.records,
        vec![
            record(0, 0, "a", Some("1")),
            record(0, 1, "c", None),
            record(1, 0, "b", Some("2")),
        ]
    );
    assert_eq!(view.aborted, 0);
    assert!(view.open.is_empty(), "{view:?}");
    // One COMMIT marker in each partition the transaction wrote.
    assert_eq!(
        view.control,
        ControlCounts {
            commit: 2,
            abort: 0
        }
    );
}

#[test]
fn committed_view_drops_an_aborted_transaction_that_a_plain_read_shows() {
    let topic = txn_topic("abort", 1);
    let producer = format!("{topic}-producer");
    run_txn(
        &topic,
        &producer,
        &["begin", "send:a=1", "send:b=2", "abort"],
    );
    run_txn(&topic, &producer, &["begin", "send:c=3", "commit"]);

    // Offsets: a 0, b 1, ABORT 2, c 3, COMMIT 4.
    let view = kafka::read_committed_view(&topic);
    assert_eq!(view.records, vec![record(0, 3, "c", Some("3"))]);
    assert_eq!(view.aborted, 2);
    assert!(view.open.is_empty(), "{view:?}");
    assert_eq!(
        view.control,
        ControlCounts {
            commit: 1,
            abort: 1
        }
    );

    // The aborted records are in the log: the checker is what hides them.
    let raw = kafka::read_topic(&topic, "read_uncommitted");
    assert_eq!(
        places(&raw),
        vec![(0, 0, "a"), (0, 1, "b"), (0, 3, "c")],
        "read_uncommitted"
    );
}

#[test]
fn committed_view_reports_an_open_transaction_until_its_id_is_initialised_again() {
    let topic = txn_topic("open", 1);
    let producer = format!("{topic}-producer");
    let child = start_txn(
        &topic,
        &producer,
        &["plain:before=0", "begin", "send:o1=1", "send:o2=2", "ready"],
    );

    let expect_open = |when: &str| {
        let view = kafka::read_committed_view(&topic);
        assert_eq!(
            view.records,
            vec![record(0, 0, "before", Some("0"))],
            "{when}"
        );
        assert_eq!(
            view.open,
            vec![record(0, 1, "o1", Some("1")), record(0, 2, "o2", Some("2"))],
            "{when}"
        );
        assert_eq!(view.aborted, 0, "{when}");
        assert_eq!(view.control, ControlCounts::default(), "{when}");
    };
    expect_open("while the producer lives");
    sigkill(child);
    expect_open("after the producer was killed");

    // A new producer with the same transactional.id aborts the transaction.
    run_txn(&topic, &producer, &[]);
    let view = kafka::read_committed_view(&topic);
    assert_eq!(view.records, vec![record(0, 0, "before", Some("0"))]);
    assert!(view.open.is_empty(), "{view:?}");
    assert_eq!(view.aborted, 2);
    assert_eq!(
        view.control,
        ControlCounts {
            commit: 0,
            abort: 1
        }
    );
}

#[test]
fn committed_view_keeps_plain_records_between_transactions_in_offset_order() {
    let topic = txn_topic("interleaved", 1);
    run_txn(
        &topic,
        &format!("{topic}-one"),
        &[
            "plain:p1=1", // 0
            "begin",
            "send:t1=a",  // 1
            "plain:p2=2", // 2
            "send:t2=b",  // 3
            "commit",     // 4
            "plain:p3=3", // 5
            "begin",
            "send:x1=x",  // 6
            "plain:p4=4", // 7
            "send:x2=y",  // 8
            "abort",      // 9
            "plain:p5=5", // 10
        ],
    );
    let expected_first = vec![
        (0, 0, "p1"),
        (0, 1, "t1"),
        (0, 2, "p2"),
        (0, 3, "t2"),
        (0, 5, "p3"),
        (0, 7, "p4"),
        (0, 10, "p5"),
    ];
    let view = kafka::read_committed_view(&topic);
    assert_eq!(places(&view.records), expected_first);
    assert_eq!(view.aborted, 2);
    assert_eq!(
        view.control,
        ControlCounts {
            commit: 1,
            abort: 1
        }
    );

    // Two transactional producers at once: each one's records wait for its
    // own marker. `two` commits while `three`'s earlier record is pending,
    // then `three` is aborted by a new producer with its id.
    let three = format!("{topic}-three");
    let child = start_txn(&topic, &three, &["begin", "send:a1=1", "ready"]); // 11
    run_txn(
        &topic,
        &format!("{topic}-two"),
        &["begin", "send:b1=1", "commit"], // 12, COMMIT 13
    );
    let view = kafka::read_committed_view(&topic);
    let mut expected = expected_first.clone();
    expected.push((0, 12, "b1"));
    assert_eq!(places(&view.records), expected);
    assert_eq!(places(&view.open), vec![(0, 11, "a1")]);

    sigkill(child);
    run_txn(&topic, &three, &[]); // ABORT 14
    let view = kafka::read_committed_view(&topic);
    assert_eq!(places(&view.records), expected);
    assert!(view.open.is_empty(), "{view:?}");
    assert_eq!(view.aborted, 3);
    assert_eq!(
        view.control,
        ControlCounts {
            commit: 2,
            abort: 2
        }
    );
}

/// `group`'s committed offset of partition 0 of `topic` and its metadata
/// string (`None`: no committed offset).
fn committed(topic: &str, group: &str) -> Option<(i64, Option<String>)> {
    #[derive(serde::Deserialize)]
    struct Committed {
        offset: Option<i64>,
        metadata: Option<String>,
    }
    let out = kafka::kafka_txn(&["committed", &kafka::brokers(), topic, group, "1"]);
    let mut parsed: BTreeMap<String, Committed> =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("committed offsets ({e}): {out}"));
    let partition = parsed.remove("0").expect("partition 0 in the answer");
    partition.offset.map(|offset| (offset, partition.metadata))
}

/// The facts about tansu's transactional offsets (TxnOffsetCommit) that an
/// exactly-once Kafka sink builds on: offsets sent with
/// `send_offsets_to_transaction` become the group's committed offsets when
/// the transaction commits, and never when it is aborted, still open, or its
/// producer crashed (and its id was initialised again).
#[test]
fn tansu_transactional_offsets_become_committed_only_with_the_transaction() {
    let topic = txn_topic("offsets", 1);
    let group = format!("{topic}-group");
    let producer = format!("{topic}-producer");
    let offsets = |offset: u32, metadata: &str| format!("offsets:{group}:0:{offset}:{metadata}");
    assert_eq!(committed(&topic, &group), None, "a fresh group");

    run_txn(
        &topic,
        &producer,
        &["begin", "send:k=1", &offsets(5, "meta-a"), "commit"],
    );
    // tansu 0.6.0 keeps the offset but not its metadata string: OffsetFetch
    // answers with no metadata (so does a plain OffsetCommit's). A sink
    // cannot keep its own state in the metadata string on tansu.
    assert_eq!(committed(&topic, &group), Some((5, None)), "after a commit");

    run_txn(
        &topic,
        &producer,
        &["begin", "send:k=2", &offsets(9, "meta-b"), "abort"],
    );
    assert_eq!(committed(&topic, &group), Some((5, None)), "after an abort");

    let child = start_txn(
        &topic,
        &producer,
        &["begin", "send:k=3", &offsets(12, "meta-c"), "ready"],
    );
    assert_eq!(
        committed(&topic, &group),
        Some((5, None)),
        "while a transaction is open"
    );
    sigkill(child);
    assert_eq!(
        committed(&topic, &group),
        Some((5, None)),
        "after its producer was killed"
    );
    run_txn(&topic, &producer, &[]);
    assert_eq!(
        committed(&topic, &group),
        Some((5, None)),
        "after its id was initialised again (the transaction aborted)"
    );

    run_txn(
        &topic,
        &producer,
        &["begin", "send:k=4", &offsets(14, "meta-d"), "commit"],
    );
    assert_eq!(
        committed(&topic, &group),
        Some((14, None)),
        "a commit after the crash"
    );
}

#[test]
#[should_panic(expected = "does not exist")]
fn read_committed_view_panics_on_an_unknown_topic() {
    let topic = format!("{}.missing", kafka::unique_topic_prefix("txn"));
    kafka::read_committed_view(&topic);
}
