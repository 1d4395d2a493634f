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
