//! The Kinesis test infrastructure against DynamoDB Local and kinesalite
//! (both started by scripts/test.sh): the forwarder writes a table's changes
//! in the Kinesis streaming destination record format, and kinesalite
//! reshards with the lineage the Kinesis source has to follow.

use crate::common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use common::kinesis::{self, Forwarder, ForwarderOptions};
use dynamo_cdc::model::{canonical_item, Item};
use serde_json::Value;

const IDLE: Duration = Duration::from_secs(60);

/// One Kinesis record, decoded.
struct Received {
    shard: String,
    partition_key: String,
    data: Vec<u8>,
    json: Value,
}

/// Every record of the stream, shard by shard, in sequence order.
async fn receive(client: &aws_sdk_kinesis::Client, stream: &str) -> Vec<Received> {
    let mut out = Vec::new();
    for (shard, records) in kinesis::read_all(client, stream).await {
        for record in records {
            let data = record.data.into_inner();
            let json = serde_json::from_slice(&data).unwrap_or_else(|e| {
                panic!(
                    "record is not JSON ({e}): {}",
                    String::from_utf8_lossy(&data)
                )
            });
            out.push(Received {
                shard: shard.clone(),
                partition_key: record.partition_key.unwrap_or_default(),
                data,
                json,
            });
        }
    }
    out
}

/// Checks one record's shape against the Kinesis streaming destination format.
fn assert_format(record: &Value, table: &str) {
    let text = record.to_string();
    let field = |name: &str| {
        record
            .get(name)
            .unwrap_or_else(|| panic!("no {name}: {text}"))
    };
    assert!(field("awsRegion").is_string(), "awsRegion: {text}");
    assert!(field("eventID").is_string(), "eventID: {text}");
    let event = field("eventName").as_str().expect("eventName is a string");
    assert!(["INSERT", "MODIFY", "REMOVE"].contains(&event), "{text}");
    assert_eq!(field("recordFormat"), "application/json", "{text}");
    assert_eq!(field("tableName"), table, "{text}");
    assert_eq!(field("eventSource"), "aws:dynamodb", "{text}");
    if let Some(identity) = record.get("userIdentity") {
        assert!(identity["principalId"].is_string() && identity["type"].is_string());
    }
    let change = field("dynamodb");
    assert!(change.get("SequenceNumber").is_none(), "{text}");
    assert!(record.get("SequenceNumber").is_none(), "{text}");
    let micros = change["ApproximateCreationDateTime"]
        .as_u64()
        .unwrap_or_else(|| panic!("ApproximateCreationDateTime is not an integer: {text}"));
    assert!(micros > 1_600_000_000_000_000, "not microseconds: {text}");
    assert_eq!(
        change["ApproximateCreationDateTimePrecision"],
        "MICROSECOND"
    );
    assert!(change["Keys"].is_object(), "{text}");
    assert!(change["SizeBytes"].is_u64(), "{text}");
    assert_eq!(
        change.get("NewImage").is_some(),
        event != "REMOVE",
        "{text}"
    );
    assert_eq!(
        change.get("OldImage").is_some(),
        event != "INSERT",
        "{text}"
    );
}

/// Decodes a DynamoDB JSON image or key.
fn item(value: &Value) -> Item {
    dynamo_cdc::decode::decode_item(&value.to_string()).expect("image decodes")
}

/// The table as the records rebuild it: each item's last change wins.
fn rebuild(records: &[&Value]) -> BTreeMap<(String, String), Item> {
    let mut table = BTreeMap::new();
    for record in records {
        let change = &record["dynamodb"];
        let key = common::key_of(&item(&change["Keys"]));
        if record["eventName"] == "REMOVE" {
            table.remove(&key);
        } else {
            table.insert(key, canonical_item(&item(&change["NewImage"])));
        }
    }
    table
}

/// Per item, the timestamps of its records increase in stream order.
fn assert_increasing_per_item(records: &[&Value]) {
    let mut last: HashMap<String, u64> = HashMap::new();
    for record in records {
        let key = record["dynamodb"]["Keys"].to_string();
        let micros = record["dynamodb"]["ApproximateCreationDateTime"]
            .as_u64()
            .expect("integer timestamp");
        if let Some(previous) = last.insert(key.clone(), micros) {
            assert!(micros > previous, "{key}: {micros} after {previous}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarder_writes_the_streaming_destination_format() {
    let dynamodb = common::client().await;
    let table = common::unique_table("kinesis_fwd");
    common::create_table(&dynamodb, &table).await;
    let kinesis = kinesis::client();
    let stream = kinesis::unique_stream("fwd");
    kinesis::create_stream(&kinesis, &stream, 2).await;

    let options = ForwarderOptions {
        duplicate_every: Some(10),
        ..ForwarderOptions::default()
    };
    let forwarder = Forwarder::start(&common::endpoint(), &table, &stream, options);
    let counts = common::workload::run(&dynamodb, &table, 40, 400, 71, 3).await;
    forwarder.wait_idle(IDLE).await;
    let (forwarded, duplicates) = (forwarder.forwarded(), forwarder.duplicates());
    forwarder.stop().await;

    let received = receive(&kinesis, &stream).await;
    assert_eq!(received.len() as u64, forwarded, "records in the stream");
    let originals = forwarded - duplicates;
    assert_eq!(duplicates, originals / 10, "one duplicate per 10 records");
    assert!(
        originals as usize > counts.total() / 2,
        "{originals} of {counts:?}"
    );
    assert!(
        received.iter().any(|r| r.shard != received[0].shard),
        "both shards used"
    );

    let mut seen = HashSet::new();
    let mut first_copies = Vec::new();
    for record in &received {
        assert_format(&record.json, &table);
        let keys: BTreeMap<String, Value> =
            serde_json::from_value(record.json["dynamodb"]["Keys"].clone()).expect("keys");
        let expected_key = serde_json::to_string(&keys).expect("key text");
        assert_eq!(record.partition_key, expected_key, "partition key");
        if seen.insert(record.data.clone()) {
            first_copies.push(&record.json);
        }
    }
    assert_eq!((received.len() - first_copies.len()) as u64, duplicates);
    let event_ids: HashSet<&str> = first_copies
        .iter()
        .map(|r| r["eventID"].as_str().expect("eventID"))
        .collect();
    assert_eq!(event_ids.len(), first_copies.len(), "one record per event");
    let events: HashSet<&str> = first_copies
        .iter()
        .map(|r| r["eventName"].as_str().expect("eventName"))
        .collect();
    assert_eq!(events.len(), 3, "inserts, updates and deletes: {events:?}");

    assert_increasing_per_item(&first_copies);
    let expected = common::scan(&dynamodb, &table).await;
    common::assert_same(&expected, &rebuild(&first_copies));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_tables_can_share_one_kinesis_stream() {
    let dynamodb = common::client().await;
    let (first, second) = (
        common::unique_table("kinesis_a"),
        common::unique_table("kinesis_b"),
    );
    common::create_table(&dynamodb, &first).await;
    common::create_table(&dynamodb, &second).await;
    let kinesis = kinesis::client();
    let stream = kinesis::unique_stream("shared");
    kinesis::create_stream(&kinesis, &stream, 1).await;

    let endpoint = common::endpoint();
    let renamed = ForwarderOptions {
        table_name: Some("orders".to_owned()),
        ..ForwarderOptions::default()
    };
    let a = Forwarder::start(&endpoint, &first, &stream, ForwarderOptions::default());
    let b = Forwarder::start(&endpoint, &second, &stream, renamed);
    common::workload::run(&dynamodb, &first, 10, 40, 5, 1).await;
    common::workload::run(&dynamodb, &second, 10, 40, 6, 1).await;
    a.wait_idle(IDLE).await;
    b.wait_idle(IDLE).await;
    let (from_a, from_b) = (a.forwarded(), b.forwarded());
    a.stop().await;
    b.stop().await;

    let mut per_table: HashMap<String, u64> = HashMap::new();
    for record in receive(&kinesis, &stream).await {
        let name = record.json["tableName"].as_str().expect("tableName");
        *per_table.entry(name.to_owned()).or_default() += 1;
    }
    assert_eq!(per_table.get(&first).copied(), Some(from_a));
    assert_eq!(per_table.get("orders").copied(), Some(from_b));
    assert_eq!(per_table.len(), 2, "{per_table:?}");
}

/// Puts numbered records into the stream until told to stop.
fn spawn_writer(
    stream: &str,
    written: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    let client = kinesis::client();
    let stream = stream.to_owned();
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            let start = written.load(Ordering::SeqCst);
            let entries = (start..start + 10)
                .map(|n| {
                    PutRecordsRequestEntry::builder()
                        .data(Blob::new(n.to_string()))
                        .partition_key(format!("key-{}", n % 37))
                        .build()
                        .expect("entry")
                })
                .collect();
            let output = client
                .put_records()
                .stream_name(&stream)
                .set_records(Some(entries))
                .send()
                .await
                .expect("put records during resharding");
            assert_eq!(output.failed_record_count, Some(0));
            written.fetch_add(10, Ordering::SeqCst);
        }
    })
}

/// Waits until the writer has put `more` records beyond what it had put.
async fn wait_for_writes(written: &AtomicU64, more: u64) {
    let target = written.load(Ordering::SeqCst) + more;
    common::wait_for_async("records to be written", Duration::from_secs(30), || async {
        written.load(Ordering::SeqCst) >= target
    })
    .await;
}

/// Reads a closed shard to its end and checks how kinesalite ends it: an
/// empty page without a next iterator and without ChildShards.
async fn assert_closed_shard_end(client: &aws_sdk_kinesis::Client, stream: &str, shard: &str) {
    let mut iterator = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator")
        .shard_iterator;
    let mut pages = 0;
    while let Some(current) = iterator {
        let page = client
            .get_records()
            .shard_iterator(current)
            .send()
            .await
            .expect("get records");
        assert!(page.child_shards.unwrap_or_default().is_empty());
        iterator = page.next_shard_iterator;
        pages += 1;
        assert!(pages < 1000, "closed shard {shard} never ends");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kinesalite_split_and_merge_report_lineage() {
    let client = kinesis::client();
    let stream = kinesis::unique_stream("reshard");
    kinesis::create_stream(&client, &stream, 2).await;
    let (written, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let writer = spawn_writer(&stream, Arc::clone(&written), Arc::clone(&stop));

    let shard = |n: u32| format!("shardId-{n:012}");
    wait_for_writes(&written, 100).await;
    kinesis::split_shard(&client, &stream, &shard(0)).await;
    wait_for_writes(&written, 100).await;
    // The upper child of shard 0 borders shard 1.
    kinesis::merge_shards(&client, &stream, &shard(3), &shard(1)).await;
    wait_for_writes(&written, 100).await;
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");

    let lineage = kinesis::list_shards(&client, &stream).await;
    let expected = vec![
        (shard(0), None, None, false),
        (shard(1), None, None, false),
        (shard(2), Some(shard(0)), None, true),
        (shard(3), Some(shard(0)), None, false),
        (shard(4), Some(shard(3)), Some(shard(1)), true),
    ];
    assert_eq!(lineage, expected);
    for closed in [shard(0), shard(1), shard(3)] {
        assert_closed_shard_end(&client, &stream, &closed).await;
    }

    let total = written.load(Ordering::SeqCst);
    let mut numbers = Vec::new();
    for (_, records) in kinesis::read_all(&client, &stream).await {
        for record in records {
            let text = String::from_utf8(record.data.into_inner()).expect("utf-8");
            numbers.push(text.parse::<u64>().expect("number"));
        }
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (0..total).collect::<Vec<_>>(), "every record once");
}
