//! `dynamo-cdc schema infer` against DynamoDB Local: a random typed
//! workload (every DynamoDB type, 38-digit numbers, empty strings, binary,
//! sets, nested maps and lists, attributes whose types conflict) is named
//! attribute by attribute, conflicts and numeric range included; the TOML
//! pastes into a clickhouse and an s3 sink; the JSON Schema accepts the items.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::engine;
use common::values::to_sdk_item;
use dynamo_cdc::model::{plain_item, AttributeValue, Item, Number};
use dynamo_cdc::sink::SinkConfig;

/// Attributes whose types conflict in the workload.
const CONFLICTS: [&str; 4] = ["count_or_flag", "mixed", "scaled", "set_or_list"];

fn n(text: &str) -> AttributeValue {
    AttributeValue::N(Number::parse(text).expect("a number"))
}

fn number(text: &str) -> Number {
    Number::parse(text).expect("a number")
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn digits(rng: &mut fastrand::Rng, count: usize) -> String {
    let mut text = rng.u8(1..=9).to_string();
    (1..count).for_each(|_| text.push(char::from(b'0' + rng.u8(0..=9))));
    text
}

fn bytes(rng: &mut fastrand::Rng, max: usize) -> Vec<u8> {
    (0..rng.usize(0..=max)).map(|_| rng.u8(..)).collect()
}

/// Item `i` of the workload: every attribute of every type, some missing.
fn typed_item(rng: &mut fastrand::Rng, i: usize) -> Item {
    let mut item = Item::new();
    let mut put = |name: &str, value: AttributeValue| item.insert(name.to_owned(), value);
    put("pk", s(&format!("item{i}")));
    put("sk", n(&i.to_string()));
    // The extremes first; the rest strictly between, at most 3 decimals.
    let price = match i {
        0 => "-12345.678".to_owned(),
        1 => "98765.4321".to_owned(),
        _ => format!("{}.{:03}", rng.i32(-12344..=98764), rng.u16(0..1000)),
    };
    put("price", n(&price));
    let sign = if rng.bool() { "-" } else { "" };
    put("big", n(&format!("{sign}{}", digits(rng, 38))));
    put("flag", AttributeValue::Bool(rng.bool()));
    put("nothing", AttributeValue::Null);
    let note = if i % 3 == 0 {
        String::new()
    } else {
        format!("note {}", rng.u32(..))
    };
    put("note", s(&note));
    put("first name", s(&format!("name{}", rng.u8(..))));
    put("blob", AttributeValue::B(bytes(rng, 24)));
    put(
        "tags",
        AttributeValue::Ss(vec![format!("t{i}"), "common".into()]),
    );
    put(
        "scores",
        AttributeValue::Ns(vec![number("1.5"), number(&format!("-{}", i + 1))]),
    );
    put(
        "blobs",
        AttributeValue::Bs(vec![vec![1, 2, i as u8], vec![9]]),
    );
    let inner: Item = [
        ("depth".to_owned(), n(&rng.u32(..).to_string())),
        ("list".to_owned(), AttributeValue::L(vec![s("a"), n("2")])),
    ]
    .into();
    let mut doc: Item = [
        ("name".to_owned(), s(&format!("doc{i}"))),
        ("inner".to_owned(), AttributeValue::M(inner)),
    ]
    .into();
    if i % 2 == 0 {
        doc.insert("optional".into(), AttributeValue::Bool(true));
    }
    put("doc", AttributeValue::M(doc));
    put(
        "list",
        AttributeValue::L(vec![
            n("1"),
            s(""),
            AttributeValue::Null,
            AttributeValue::Bool(false),
        ]),
    );
    put(
        "mixed",
        if i % 2 == 0 {
            s("text")
        } else {
            n(&i.to_string())
        },
    );
    put(
        "count_or_flag",
        if i % 4 == 0 {
            AttributeValue::Bool(true)
        } else {
            n("7")
        },
    );
    put(
        "set_or_list",
        if i % 5 == 0 {
            AttributeValue::Ss(vec!["x".into()])
        } else {
            AttributeValue::L(vec![s("y")])
        },
    );
    // Every value a number, but a scale of 1 and 38 integer digits fit no
    // one decimal column.
    put(
        "scaled",
        if i % 2 == 0 {
            n("0.5")
        } else {
            n(&digits(rng, 38))
        },
    );
    if i % 2 == 1 {
        put("maybe", n("1"));
    }
    item
}

fn config(dir: &Path, table: &str) -> std::path::PathBuf {
    let sinks = "[[sinks]]\ntype = \"postgres\"\nname = \"pg\"\nurl = \"postgres://u@localhost/db\"\n\n\
                 [[sinks]]\ntype = \"clickhouse\"\nname = \"ch\"\nurl = \"http://localhost:8123\"\n";
    engine::write_config(dir, &[table], "", sinks)
}

fn infer(config: &Path, args: &[&str]) -> std::process::Output {
    let config = config.display().to_string();
    let mut all = vec!["schema", "infer", "--config", config.as_str()];
    all.extend_from_slice(args);
    engine::command(&all).output().expect("run schema infer")
}

fn stdout_of(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "schema infer failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infers_every_attribute_and_conflict_of_a_typed_workload() {
    let seed = fastrand::u64(..);
    println!("seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let client = common::client().await;
    let table = common::unique_table("infer");
    common::create_table(&client, &table).await;
    let items: Vec<Item> = (0..60).map(|i| typed_item(&mut rng, i)).collect();
    for item in &items {
        let request = client.put_item().table_name(&table);
        let request = request.set_item(Some(to_sdk_item(item)));
        request.send().await.expect("put item");
    }
    // Wait until the stream holds every insert.
    common::wait_for_async("the stream records", Duration::from_secs(30), || async {
        common::streams::records(&table).await.len() >= items.len()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), &table);

    let started = std::time::Instant::now();
    let text = stdout_of(&infer(&config, &[]));
    println!("{text}");
    println!("schema infer took {:?}", started.elapsed());

    let names: BTreeSet<&String> = items.iter().flat_map(|item| item.keys()).collect();
    for name in names.iter().filter(|n| !["pk", "sk"].contains(&n.as_str())) {
        assert!(
            text.contains(&format!("# attribute \"{name}\": ")),
            "{name} is not described"
        );
    }
    assert!(text.contains("# keys: \"pk\" (S), \"sk\" (N)"), "keys line");
    assert!(
        !text.contains("# attribute \"pk\""),
        "keys are not proposed"
    );
    let conflicts = text
        .lines()
        .find_map(|line| line.strip_prefix("# conflicts: "))
        .expect("a conflicts line");
    let expected: Vec<String> = CONFLICTS.iter().map(|c| format!("\"{c}\"")).collect();
    assert_eq!(conflicts, expected.join(", "));
    assert!(
        text.contains(
            "#   numbers -12345.678 .. 98765.4321; precision 9, scale 4 (5 integer digit(s))"
        ),
        "price's range"
    );
    assert!(
        text.contains("#   text length 0 .. "),
        "empty strings are seen"
    );
    assert!(
        text.contains("#   only NULL seen"),
        "the NULL-only attribute"
    );
    assert!(
        text.contains(
            "#   shape {\"inner\": M 120 {\"depth\": N 120; \"list\": L 120 [N 120, S 120]}"
        ),
        "doc's nested shape (Scan items and stream images)"
    );
    assert!(text.contains("#   clickhouse \"ch\": ") && text.contains("#   postgres \"pg\": "));
    assert!(
        text.contains("#   postgres \"pg\": numeric"),
        "price in PostgreSQL"
    );
    assert!(text.contains("stream image(s)") && !text.contains(" 0 stream image(s)"));
    assert!(text.contains("name = \"c__first_20name\"\nattribute = \"first name\""));

    paste_into_sinks(&text, dir.path(), &table);
    json_schema(&config, dir.path(), &items).await;
    clear_errors(&config, dir.path()).await;
    scan_only_without_a_stream(&client, dir.path()).await;
}

/// A table without a stream is sampled by Scan alone, and the output says so.
async fn scan_only_without_a_stream(client: &aws_sdk_dynamodb::Client, dir: &Path) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let table = common::unique_table("infer_nostream");
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key schema"),
        )
        .send()
        .await
        .expect("create table");
    for (id, value) in [("a", n("1.25")), ("b", s("x"))] {
        let item = Item::from([("id".to_owned(), s(id)), ("v".to_owned(), value)]);
        let request = client.put_item().table_name(&table);
        request
            .set_item(Some(to_sdk_item(&item)))
            .send()
            .await
            .expect("put item");
    }
    let own = dir.join("nostream");
    std::fs::create_dir_all(&own).expect("dir");
    let config = engine::write_config(&own, &[&table], "", &engine::sqlite_sink(&own.join("r.db")));
    let text = stdout_of(&infer(&config, &["--table", &table]));
    assert!(
        text.contains("# sampled 2 item(s): 2 by parallel Scan, 0 stream image(s)"),
        "{text}"
    );
    assert!(
        text.contains("has no stream") && text.contains("sampled by Scan only"),
        "{text}"
    );
    assert!(text.contains("# keys: \"id\" (S)"), "{text}");
    assert!(text.contains("# conflicts: \"v\""), "{text}");
    assert!(
        text.contains("# no clickhouse, postgres or s3 sink is configured for this table"),
        "{text}"
    );
}

/// The printed TOML, pasted under a clickhouse and a parquet s3 sink,
/// parses with the engine's own config types.
fn paste_into_sinks(text: &str, dir: &Path, table: &str) {
    let base = format!(
        "state_dir = \"{}\"\n[[tables]]\nname = \"{table}\"\n",
        dir.join("state").display()
    );
    let clickhouse =
        format!("{base}[[sinks]]\ntype = \"clickhouse\"\nurl = \"http://localhost:8123\"\n{text}");
    let s3 = format!(
        "{base}[[sinks]]\ntype = \"s3\"\nbucket = \"b\"\nregion = \"us-east-1\"\nformat = \"parquet\"\n{text}"
    );
    for pasted in [clickhouse, s3] {
        let config = dynamo_cdc::config::parse_str(&pasted, Path::new("pasted.toml"), |_| None)
            .unwrap_or_else(|err| panic!("the TOML does not paste: {err}\n{pasted}"));
        let columns = match &config.sinks[0].sink {
            SinkConfig::Clickhouse(sink) => sink.columns.mapped().to_vec(),
            SinkConfig::S3(sink) => sink.columns.mapped().to_vec(),
            other => panic!("unexpected sink {}", other.kind()),
        };
        let by_attribute = |a: &str| {
            columns
                .iter()
                .find(|c| c.attribute() == a)
                .map(|c| c.column_type.clone())
        };
        assert_eq!(
            by_attribute("price").as_deref(),
            Some("Nullable(Decimal(38, 6))")
        );
        assert_eq!(
            by_attribute("big").as_deref(),
            Some("Nullable(Decimal(38, 0))")
        );
        assert_eq!(by_attribute("mixed").as_deref(), Some("Nullable(String)"));
        assert_eq!(by_attribute("tags").as_deref(), Some("Array(String)"));
        assert_eq!(by_attribute("doc"), None, "maps are not mapped columns");
        assert!(columns.iter().all(|c| c.table.as_deref() == Some(table)));
    }
}

/// The JSON Schema names every attribute, requires the always-present
/// ones, and accepts the items' plain JSON (checked by Python's
/// `jsonschema`, in the test venv) while rejecting a wrong one.
async fn json_schema(config: &Path, dir: &Path, items: &[Item]) {
    let output = stdout_of(&infer(
        config,
        &["--format", "json-schema", "--sample", "500"],
    ));
    let schema: serde_json::Value = serde_json::from_str(output.trim()).expect("one JSON document");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let properties = schema["properties"].as_object().expect("properties");
    for name in items.iter().flat_map(|item| item.keys()) {
        assert!(properties.contains_key(name), "{name} in the schema");
    }
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(required.contains("pk") && required.contains("price") && !required.contains("maybe"));
    assert_eq!(
        properties["mixed"]["type"],
        serde_json::json!(["number", "string"])
    );
    assert_eq!(
        properties["doc"]["properties"]["inner"]["properties"]["depth"]["type"],
        "number"
    );
    assert_eq!(
        properties["doc"]["required"],
        serde_json::json!(["inner", "name"])
    );

    let schema_path = dir.join("schema.json");
    std::fs::write(&schema_path, output.trim()).expect("write schema");
    let mut good = String::new();
    for item in items {
        good.push_str(&plain_item(item));
        good.push('\n');
    }
    let mut wrong = items[0].clone();
    wrong.insert("flag".into(), s("not a bool"));
    assert!(
        validate(&schema_path, &dir.join("good.jsonl"), &good),
        "items fit their schema"
    );
    let wrong = format!("{}\n", plain_item(&wrong));
    assert!(
        !validate(&schema_path, &dir.join("wrong.jsonl"), &wrong),
        "a string flag does not fit"
    );
}

/// The test venv's Python (scripts/test.sh installs `jsonschema` there).
fn venv_python() -> String {
    std::env::var("DYNAMO_CDC_TEST_CHDB_PYTHON").unwrap_or_else(|_| {
        panic!("DYNAMO_CDC_TEST_CHDB_PYTHON is not set: run the tests with scripts/test.sh, which installs the test venv with jsonschema")
    })
}

/// True when every line of `lines` validates against the schema.
fn validate(schema: &Path, path: &Path, lines: &str) -> bool {
    std::fs::write(path, lines).expect("write items");
    let script = "import json, sys, jsonschema\n\
                  schema = json.load(open(sys.argv[1]))\n\
                  jsonschema.Draft202012Validator.check_schema(schema)\n\
                  v = jsonschema.Draft202012Validator(schema)\n\
                  errors = [e.message for line in open(sys.argv[2]) for e in v.iter_errors(json.loads(line))]\n\
                  print(errors[:3])\n\
                  sys.exit(1 if errors else 0)\n";
    let output = std::process::Command::new(venv_python())
        .args(["-c", script])
        .arg(schema)
        .arg(path)
        .output()
        .expect("run the venv's python");
    println!(
        "jsonschema: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.status.success()
}

/// An unknown table names the configured ones; a missing table says so.
async fn clear_errors(config: &Path, dir: &Path) {
    let output = infer(config, &["--table", "nope"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("no table named \"nope\"") && stderr.contains("tables: infer_"),
        "{stderr}"
    );

    let missing = common::unique_table("missing");
    let other = dir.join("other");
    std::fs::create_dir_all(&other).expect("dir");
    let config = engine::write_config(
        &other,
        &[&missing],
        "",
        &engine::sqlite_sink(&other.join("replica.db")),
    );
    let output = infer(&config, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("table \"{missing}\" does not exist")),
        "{stderr}"
    );
}
