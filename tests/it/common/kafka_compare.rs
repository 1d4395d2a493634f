//! Comparing a Kafka topic the sink wrote with the DynamoDB table and its
//! stream: the last record per key against a Scan, and every stream
//! record exactly once.

use std::collections::BTreeMap;

use dynamo_cdc::model::{plain_item, AttributeValue, Item};
use dynamo_cdc::sink::elasticsearch::{restyle_numbers, NumberStyle};
use serde_json::Value;

use super::kafka;

/// A `kafka` sink entry writing to `brokers`, topics from `topic`, with
/// `extra` settings, small batches and short retries.
pub fn sink_config(brokers: &str, topic: &str, extra: &str) -> String {
    format!(
        "[[sinks]]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\ncreate_topics = true\n\
         partitions = 3\n{extra}\n[sinks.batch]\nmax_records = 200\nmax_age = \"20ms\"\n\
         max_retry_backoff = \"500ms\"\n"
    )
}

/// Plain JSON with every number as a string (exact digits) and the arrays
/// that hold sets sorted, for comparing an image with a Scan's item.
pub fn comparable(item: &Item, text: &str) -> Value {
    let mut value: Value =
        serde_json::from_str(&restyle_numbers(text.to_owned(), NumberStyle::String))
            .expect("plain JSON");
    for (name, attribute) in item {
        if matches!(
            attribute,
            AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
        ) {
            if let Some(items) = value.get_mut(name).and_then(Value::as_array_mut) {
                items.sort_by_key(|v| v.to_string());
            }
        }
    }
    value
}

/// How the topic differs from the table: the last record of every key must
/// be the table's item (its Debezium `after`), and a tombstone for keys the
/// table no longer holds. `None` when they agree.
pub fn topic_difference(
    records: &[kafka::Record],
    items: &BTreeMap<(String, String), Item>,
) -> Option<String> {
    let last = kafka::last_by_key(records);
    let mut live = 0;
    for (key, value) in &last {
        let Some(value) = value else {
            continue;
        };
        // Numbers as strings: the key's digits exactly as written.
        let keys: Value = serde_json::from_str(&restyle_numbers(key.clone(), NumberStyle::String))
            .expect("a JSON key");
        let pk = keys["pk"].as_str().expect("pk").to_owned();
        let sk = keys["sk"].as_str().expect("sk").to_owned();
        let Some(item) = items.get(&(pk, sk)) else {
            return Some(format!(
                "key {key} is not in the table but its last record is {value}"
            ));
        };
        live += 1;
        // Compare the original text: serde_json re-serializing `after` would
        // round 38-digit numbers, so cut it out of the record.
        let (Some(start), Some(end)) = (value.find("\"after\":"), value.find(",\"source\":"))
        else {
            return Some(format!("key {key}: not a Debezium envelope: {value}"));
        };
        let after = &value[start + "\"after\":".len()..end];
        if comparable(item, after) != comparable(item, &plain_item(item)) {
            return Some(format!("key {key}: {after} is not the table's item"));
        }
    }
    (live != items.len())
        .then(|| format!("{live} keys hold a value, the table {} items", items.len()))
}

/// Asserts [`topic_difference`] finds none.
pub fn assert_topic_equals(records: &[kafka::Record], items: &BTreeMap<(String, String), Item>) {
    if let Some(difference) = topic_difference(records, items) {
        panic!("the topic is not the table: {difference}");
    }
}

/// How the change records of a topic differ from the stream's records
/// `(sequence, pk)`: each must be there exactly once (by key and the
/// `sequence` header), each delete followed by one tombstone. `None` when
/// they agree.
pub fn changes_difference(records: &[kafka::Record], stream: &[(u128, String)]) -> Option<String> {
    let mut seen: BTreeMap<(String, u128), usize> = BTreeMap::new();
    let mut deletes = 0;
    let mut tombstones = 0;
    for record in records {
        let Some(sequence) = record.headers.get("sequence") else {
            tombstones += 1;
            continue;
        };
        if record.headers.get("op").map(String::as_str) == Some("remove") {
            deletes += 1;
        }
        let key: Value =
            serde_json::from_str(record.key.as_deref().unwrap_or("null")).expect("a JSON key");
        let pk = key["pk"].as_str().unwrap_or_default().to_owned();
        let sequence: u128 = sequence.parse().expect("a decimal sequence header");
        *seen.entry((pk, sequence)).or_default() += 1;
    }
    if let Some(((pk, sequence), times)) = seen.iter().find(|(_, times)| **times > 1) {
        return Some(format!(
            "change {pk}@{sequence} is in the topic {times} times"
        ));
    }
    let expected: BTreeMap<(String, u128), usize> =
        stream.iter().map(|(s, pk)| ((pk.clone(), *s), 1)).collect();
    if let Some(((pk, sequence), _)) = expected.iter().find(|(k, _)| !seen.contains_key(*k)) {
        return Some(format!(
            "change {pk}@{sequence} of the stream is not in the topic"
        ));
    }
    if let Some(((pk, sequence), _)) = seen.iter().find(|(k, _)| !expected.contains_key(*k)) {
        return Some(format!(
            "change {pk}@{sequence} in the topic is not in the stream"
        ));
    }
    (deletes != tombstones).then(|| format!("{deletes} deletes but {tombstones} tombstones"))
}

/// Puts two small items around one too large for a producer whose
/// `message.max.bytes` is 20,000, runs the engine to the end with a plain
/// envelope and `extra` settings, and checks that `read` finds only the
/// small ones in the topic and the large one is the sink's one dead letter.
pub async fn check_a_record_too_large(
    prefix: &str,
    extra: &str,
    read: fn(&str) -> Vec<kafka::Record>,
) {
    let client = super::client().await;
    let table = super::unique_table(prefix);
    super::create_table(&client, &table).await;
    for (pk, size) in [("small-1", 10), ("big", 50_000), ("small-2", 10)] {
        let item = Item::from([
            ("pk".to_owned(), AttributeValue::S(pk.into())),
            (
                "sk".to_owned(),
                AttributeValue::N(dynamo_cdc::model::Number::parse("1").expect("n")),
            ),
            ("blob".to_owned(), AttributeValue::S("x".repeat(size))),
        ]);
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(super::values::to_sdk_item(&item)))
            .send()
            .await
            .expect("put");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let topic = format!("{}.{{table}}", kafka::unique_topic_prefix(prefix));
    let settings = format!(
        "envelope = \"plain\"\n{extra}\n[sinks.properties]\n\"message.max.bytes\" = \"20000\""
    );
    let sink = sink_config(&kafka::brokers(), &topic, &settings);
    let config = super::engine::write_config(dir.path(), &[&table], "", &sink);
    tokio::task::spawn_blocking(move || super::engine::run_until_caught_up(&config))
        .await
        .expect("run");
    let records = read(&topic.replace("{table}", &table));
    let keys: Vec<String> = records.iter().filter_map(|r| r.key.clone()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.contains("small")), "{keys:?}");
    let letters = super::engine::dead_letters(dir.path(), &table);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["stage"], Value::from("sink:kafka"));
    let error = letters[0]["error"].as_str().expect("error");
    assert!(error.contains("too large"), "{error}");
}
