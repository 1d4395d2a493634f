//! An index compared with a DynamoDB table, for the `elasticsearch` sink's
//! tests: the sink section, the expected documents and the comparison.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use dynamo_cdc::model::{plain_item, AttributeValue, Item, KeyKind, TableSchema};
use dynamo_cdc::sink::elasticsearch::{document_id, index_name, restyle_numbers, NumberStyle};
use serde_json::Value;

use super::opensearch;

/// Keeps every attribute in `_source` without mapping it (the workload's
/// items mix types under one name, as DynamoDB allows); keys as keywords,
/// and the metadata's version as a long (the end-of-snapshot sweep queries it).
pub const UNMAPPED: &str = r#"{"mappings":{"dynamic":false,"properties":{
    "pk":{"type":"keyword"},"sk":{"type":"keyword"},
    "dynamodb":{"properties":{"es_version":{"type":"long"}}}}}}"#;

/// An `elasticsearch` sink section creating its indices with `body` (a
/// file written into `dir`), plus `extra` settings.
pub fn es_sink(dir: &Path, url: &str, body: &str, extra: &str) -> String {
    let body_file = dir.join("index-body.json");
    std::fs::write(&body_file, body).expect("write the index body");
    format!(
        "[[sinks]]\ntype = \"elasticsearch\"\nurl = \"{url}\"\nindex = \"es-{{table}}\"\n\
         create_index = true\nindex_body_file = \"{}\"\nmetadata_field = \"dynamodb\"\n{extra}\n\
         [sinks.batch]\nmax_records = 100\nmax_age = \"20ms\"\nmax_retry_backoff = \"500ms\"\n",
        body_file.display()
    )
}

pub fn index_of(table: &str) -> String {
    index_name("es-{table}", table)
}

/// The documents an index should hold for the table's items: `_id` to the
/// item as plain JSON with numbers exact or strings.
pub fn expected_documents(items: &BTreeMap<(String, String), Item>) -> BTreeMap<String, Item> {
    let schema = TableSchema::new("t", &[("pk", KeyKind::S), ("sk", KeyKind::N)]);
    items
        .values()
        .map(|item| {
            (
                document_id(&schema.keys, item).expect("an id"),
                item.clone(),
            )
        })
        .collect()
}

/// The document's value with arrays that hold sets sorted, so that set
/// order (which DynamoDB does not keep) does not count.
pub fn normalized(expected: &AttributeValue, actual: &Value) -> (Value, Value) {
    let plain = |value: &AttributeValue| {
        let item = Item::from([("v".to_owned(), value.clone())]);
        let text = restyle_numbers(plain_item(&item), NumberStyle::Exact);
        serde_json::from_str::<Value>(&text).expect("plain JSON")["v"].clone()
    };
    let sorted = |value: &Value| {
        let mut items = value.as_array().cloned().unwrap_or_default();
        items.sort_by_key(|v| v.to_string());
        Value::Array(items)
    };
    match expected {
        AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_) => {
            (sorted(&plain(expected)), sorted(actual))
        }
        AttributeValue::M(map) => {
            let mut want = serde_json::Map::new();
            let mut got = serde_json::Map::new();
            for (name, value) in map {
                let (w, g) = normalized(value, &actual[name]);
                want.insert(name.clone(), w);
                got.insert(name.clone(), g);
            }
            (Value::Object(want), Value::Object(got))
        }
        _ => (plain(expected), actual.clone()),
    }
}

/// How the index differs from the table's items, value for value (`None`
/// when it holds exactly them).
pub async fn index_difference(
    index: &str,
    items: &BTreeMap<(String, String), Item>,
) -> Option<String> {
    let documents = opensearch::documents(index).await;
    let expected = expected_documents(items);
    let live: BTreeMap<&String, &Value> = documents
        .iter()
        .filter(|(_, doc)| doc.get("dynamodb_deleted").is_none())
        .collect();
    let have: Vec<&str> = live.keys().map(|k| k.as_str()).collect();
    let want: Vec<&str> = expected.keys().map(String::as_str).collect();
    if have != want {
        return Some(format!("documents {have:?}, items {want:?}"));
    }
    for (id, item) in &expected {
        let document = live[id];
        for (name, value) in item {
            let (want, got) = normalized(value, &document[name]);
            if want != got {
                return Some(format!(
                    "document {id}, attribute {name}: {got} instead of {want}"
                ));
            }
        }
        let extra: Vec<&String> = document
            .as_object()?
            .keys()
            .filter(|k| *k != "dynamodb" && !item.contains_key(*k))
            .collect();
        if !extra.is_empty() {
            return Some(format!("document {id} has extra fields {extra:?}"));
        }
    }
    None
}

/// Asserts that the index holds exactly the table's items, value for value.
pub async fn assert_index_equals(index: &str, items: &BTreeMap<(String, String), Item>) {
    if let Some(difference) = index_difference(index, items).await {
        panic!("the index is not the table: {difference}");
    }
}

pub async fn wait_for_documents(index: &str) {
    super::wait_for_async(
        &format!("documents in {index}"),
        Duration::from_secs(60),
        || async { opensearch::exists(index).await && opensearch::count(index).await > 0 },
    )
    .await;
}
