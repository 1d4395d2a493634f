//! Against DynamoDB Local and osmem: the `elasticsearch` sink with
//! `mapping = "auto"` maps every attribute with an explicit type, adds
//! fields as they appear and puts values whose type changed under suffixed
//! fields: no document is refused, the index equals the table, and
//! `schema show` lists every field it mapped. Two engines writing one index
//! from two tables whose attributes disagree on types converge.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::engine::{spawn, write_config};
use common::es_index::{expected_documents, normalized};
use common::opensearch;
use common::typed_sinks::schema_show;
use dynamo_cdc::model::Item;
use dynamo_cdc::schema::naming::column_name;
use serde_json::Value;

/// Every suffix the sink puts after a field whose type a value does not fit.
const SUFFIXES: [&str; 6] = ["__s", "__n", "__b", "__bin", "__a", "__j"];

/// An auto-mapping sink section writing `index` (a template), its history in `history`.
fn auto_sink(index: &str, history: &str) -> String {
    format!(
        "[[sinks]]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindex = \"{index}\"\n\
         mapping = \"auto\"\nschema_index = \"{history}\"\nmetadata_field = \"dynamodb\"\n\
         [sinks.batch]\nmax_records = 20\nmax_age = \"20ms\"\nmax_retry_backoff = \"500ms\"\n",
        opensearch::url()
    )
}

/// The field holding `attribute` in `document`: its own name (escaped
/// when not plain) or exactly one suffixed form.
fn field_in(document: &serde_json::Map<String, Value>, attribute: &str) -> Result<String, String> {
    let base = column_name(attribute, |name| {
        ["dynamodb", "dynamodb_deleted"].contains(&name.to_ascii_lowercase().as_str())
    });
    let present: Vec<String> = std::iter::once(base.clone())
        .chain(SUFFIXES.iter().map(|s| format!("{base}{s}")))
        .filter(|field| document.contains_key(field))
        .collect();
    match present.as_slice() {
        [one] => Ok(one.clone()),
        other => Err(format!("attribute {attribute:?} is under {other:?}")),
    }
}

/// How `index` differs from `items` (`None` when every item is a document
/// holding each attribute, value for value, under its plain or suffixed
/// field, and nothing else besides the metadata).
async fn difference(index: &str, items: &BTreeMap<(String, String), Item>) -> Option<String> {
    if !opensearch::exists(index).await {
        return Some(format!("no index {index}"));
    }
    let documents = opensearch::documents(index).await;
    let expected = expected_documents(items);
    let (have, want): (Vec<&String>, Vec<&String>) =
        (documents.keys().collect(), expected.keys().collect());
    if have != want {
        return Some(format!("documents {have:?}, items {want:?}"));
    }
    for (id, item) in &expected {
        let document = documents[id].as_object()?;
        let mut seen = BTreeSet::from(["dynamodb".to_owned()]);
        for (attribute, value) in item {
            let field = match field_in(document, attribute) {
                Ok(field) => field,
                Err(problem) => return Some(format!("document {id}: {problem}")),
            };
            let (want, got) = normalized(value, &document[&field]);
            if want != got {
                return Some(format!("document {id}, {field}: {got} instead of {want}"));
            }
            seen.insert(field);
        }
        let extra: Vec<&String> = document.keys().filter(|k| !seen.contains(*k)).collect();
        if !extra.is_empty() {
            return Some(format!("document {id} has extra fields {extra:?}"));
        }
    }
    None
}

async fn wait_index_equals(client: &aws_sdk_dynamodb::Client, tables: &[&str], index: &str) {
    common::wait_for_async(
        &format!("{index} to equal {tables:?}"),
        Duration::from_secs(90),
        || async {
            let mut items = BTreeMap::new();
            for table in tables {
                items.extend(common::scan(client, table).await);
            }
            difference(index, &items).await.is_none()
        },
    )
    .await;
}

/// The `type` of each top-level field (`object` without one).
async fn field_types(index: &str) -> BTreeMap<String, String> {
    let mapping = opensearch::mapping(index).await;
    let properties = mapping["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    properties
        .into_iter()
        .map(|(name, field)| {
            let kind = field["type"].as_str().unwrap_or("object").to_owned();
            (name, kind)
        })
        .collect()
}

/// `schema show --json` of `config`: each event's `column`.
fn history_columns(config: &Path) -> Vec<String> {
    schema_show(config)
        .into_iter()
        .map(|(_, event)| event.column)
        .collect()
}

fn no_dead_letters(dir: &Path, table: &str) {
    let path = dir.join(format!("state/dead-letters/{table}.jsonl"));
    let letters = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        letters.trim().is_empty(),
        "refused documents: {letters:.2000}"
    );
}

async fn put(table: &str, pk: &str, attributes: &str) {
    let item = format!("{{\"pk\":{{\"S\":\"{pk}\"}},\"sk\":{{\"N\":\"1\"}}{attributes}}}");
    common::raw_put_item(table, &item).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn types_change_under_live_writes_and_no_document_is_refused() {
    let client = common::client().await;
    let table = common::unique_table("esauto");
    common::create_table(&client, &table).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let history = opensearch::unique_index("history");
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &auto_sink("esauto-{table}", &history),
    );
    let index = format!("esauto-{}", table.to_lowercase());
    for n in 0..10 {
        let attributes = format!(
            ",\"price\":{{\"N\":\"{n}\"}},\"note\":{{\"S\":\"n{n}\"}},\"tags\":{{\"SS\":[\"a\",\"b{n}\"]}},\
             \"raw\":{{\"B\":\"AAEC\"}},\"flag\":{{\"BOOL\":true}},\"first name\":{{\"S\":\"x\"}},\
             \"a.b\":{{\"N\":\"{n}\"}},\"gone\":{{\"NULL\":true}},\"dynamodb\":{{\"S\":\"mine\"}}"
        );
        put(&table, &format!("i{n}"), &attributes).await;
    }
    let mut engine = spawn(&config, &dir.path().join("engine.log"));
    wait_index_equals(&client, &[&table], &index).await;

    // Live: a decimal price, a map note, a number flag, a new attribute.
    for n in 10..20 {
        let attributes = format!(
            ",\"price\":{{\"N\":\"{n}.5\"}},\"note\":{{\"M\":{{\"x\":{{\"N\":\"1\"}}}}}},\
             \"flag\":{{\"N\":\"1\"}},\"extra\":{{\"L\":[{{\"S\":\"e\"}},{{\"N\":\"2\"}}]}}"
        );
        put(&table, &format!("i{n}"), &attributes).await;
    }
    wait_index_equals(&client, &[&table], &index).await;
    // Rewrites: a string price, sets and binaries changing type, a 38-digit
    // number, a bool price, a map turned string; and a delete.
    for n in 0..5 {
        let attributes = format!(
            ",\"price\":{{\"S\":\"n/a\"}},\"tags\":{{\"N\":\"{n}\"}},\"raw\":{{\"S\":\"text\"}},\
             \"extra\":{{\"M\":{{\"deep.er\":{{\"BOOL\":false}}}}}},\"a.b\":{{\"S\":\"dotted\"}}"
        );
        put(&table, &format!("i{n}"), &attributes).await;
    }
    put(
        &table,
        "i20",
        &format!(",\"price\":{{\"N\":\"{}\"}}", "7".repeat(38)),
    )
    .await;
    put(
        &table,
        "i21",
        ",\"price\":{\"BOOL\":false},\"note\":{\"SS\":[\"s\"]}",
    )
    .await;
    put(
        &table,
        "i22",
        ",\"note\":{\"S\":\"back to text\"},\"extra\":{\"S\":\"flat\"}",
    )
    .await;
    common::raw_call(
        "DynamoDB_20120810.DeleteItem",
        format!("{{\"TableName\":\"{table}\",\"Key\":{{\"pk\":{{\"S\":\"i5\"}},\"sk\":{{\"N\":\"1\"}}}}}}"),
    )
    .await;
    wait_index_equals(&client, &[&table], &index).await;
    engine.kill().expect("stop the engine");
    engine.wait().expect("reap");
    no_dead_letters(dir.path(), &table);

    let types = field_types(&index).await;
    let expected = [
        ("pk", "keyword"),
        ("sk", "double"),
        ("price", "long"),
        ("price__n", "double"),
        ("price__s", "keyword"),
        ("price__b", "boolean"),
        ("note", "keyword"),
        ("note__j", "object"),
        ("tags", "keyword"),
        ("raw", "binary"),
        ("raw__s", "keyword"),
        ("flag", "boolean"),
        ("flag__n", "double"),
        ("__first_20name", "keyword"),
        ("__a_2Eb", "long"),
        ("__a_2Eb__s", "keyword"),
        ("extra", "object"),
        ("__dynamodb", "keyword"),
    ];
    for (field, kind) in expected {
        assert_eq!(
            types.get(field).map(String::as_str),
            Some(kind),
            "{field} in {types:?}"
        );
    }
    assert_eq!(
        opensearch::mapping(&index).await["properties"]["extra"]["enabled"],
        Value::Bool(false)
    );
    // Every field the sink mapped is in the history once; the metadata
    // object is the index's dynamic mapping, not the sink's.
    let mut columns = history_columns(&config);
    let count = columns.len();
    columns.sort();
    columns.dedup();
    assert_eq!(count, columns.len(), "one event per field: {columns:?}");
    let mapped: Vec<String> = types.keys().filter(|f| *f != "dynamodb").cloned().collect();
    assert_eq!(columns, mapped);
    println!(
        "fields mapped: {}, history events: {count}, dead letters: 0",
        types.len()
    );
    opensearch::delete_index(&index).await;
    opensearch::delete_index(&history).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_engines_adding_the_same_fields_with_other_types_converge() {
    let client = common::client().await;
    let (first, second) = (
        common::unique_table("esrace_a"),
        common::unique_table("esrace_b"),
    );
    common::create_table(&client, &first).await;
    common::create_table(&client, &second).await;
    let index = opensearch::unique_index("esrace");
    let history = opensearch::unique_index("esrace-history");
    // A first change each, so that the engines start on a stream with records.
    put(&first, "a-seed", "").await;
    put(&second, "b-seed", "").await;
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let configs: Vec<_> = [&first, &second]
        .iter()
        .zip(&dirs)
        .map(|(table, dir)| write_config(dir.path(), &[table], "", &auto_sink(&index, &history)))
        .collect();
    let mut engines: Vec<_> = configs
        .iter()
        .zip(&dirs)
        .map(|(config, dir)| spawn(config, &dir.path().join("engine.log")))
        .collect();
    for dir in &dirs {
        common::wait_for(
            "the engine to read the mapping",
            Duration::from_secs(60),
            || {
                std::fs::read_to_string(dir.path().join("engine.log"))
                    .is_ok_and(|log| log.contains("read the mapping"))
            },
        );
    }
    // A third writer maps `price` after both engines read the mapping: the
    // first engine's own `price` (a long) is refused and it must re-read.
    opensearch::put_mapping(
        &index,
        serde_json::json!({"properties": {"price": {"type": "boolean"}}}),
    )
    .await;
    // The same attributes in each table with types that neither field
    // takes from the other (a keyword or stored object would take many).
    for n in 0..30 {
        let a = format!(
            ",\"price\":{{\"N\":\"{n}\"}},\"flag\":{{\"BOOL\":true}},\"raw\":{{\"B\":\"AAEC\"}}"
        );
        let b = format!(
            ",\"price\":{{\"BOOL\":false}},\"flag\":{{\"B\":\"AQI=\"}},\"raw\":{{\"N\":\"{n}\"}}"
        );
        put(&first, &format!("a{n}"), &a).await;
        put(&second, &format!("b{n}"), &b).await;
    }
    wait_index_equals(&client, &[&first, &second], &index).await;
    for engine in &mut engines {
        engine.kill().expect("stop");
        engine.wait().expect("reap");
    }
    no_dead_letters(dirs[0].path(), &first);
    no_dead_letters(dirs[1].path(), &second);
    let mut raced = 0;
    for dir in &dirs {
        let log = std::fs::read_to_string(dir.path().join("engine.log")).expect("log");
        assert!(!log.contains("ERROR"), "{log:.3000}");
        raced += log.matches("a field was mapped meanwhile").count();
    }
    assert!(
        raced >= 1,
        "the first engine's price was refused and re-read"
    );
    let types = field_types(&index).await;
    assert_eq!(types["price"], "boolean", "{types:?}");
    assert_eq!(types["price__n"], "double", "{types:?}");
    for attribute in ["price", "flag", "raw"] {
        let forms: Vec<&String> = types.keys().filter(|f| f.starts_with(attribute)).collect();
        assert_eq!(
            forms.len(),
            2,
            "{attribute}: one field and one suffixed: {types:?}"
        );
    }
    let mut columns = history_columns(&configs[0]);
    let count = columns.len();
    columns.sort();
    columns.dedup();
    assert_eq!(
        count,
        columns.len(),
        "each field recorded once: {columns:?}"
    );
    // `price` itself was mapped by the third writer; the second engine's
    // request for the same boolean may also succeed (an equal mapping is
    // accepted), and then it records it too.
    columns.retain(|c| c != "price");
    let mapped: Vec<String> = types
        .keys()
        .filter(|f| !["dynamodb", "price"].contains(&f.as_str()))
        .cloned()
        .collect();
    assert_eq!(columns, mapped);
    println!(
        "fields mapped: {}, mapping conflicts re-read: {raced}",
        types.len()
    );
    opensearch::delete_index(&index).await;
    opensearch::delete_index(&history).await;
}
