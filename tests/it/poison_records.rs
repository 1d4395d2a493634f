//! Poison records into every sink at once: a string with a lone UTF-16
//! surrogate escape and one with U+0000 (DynamoDB Local stores both), a
//! 400 KB item, a type conflict and a 38-digit number against typed
//! targets. Each lands or goes to the dead-letter file with the sink's
//! reason; none is lost, and the item written after them reaches every
//! sink (the shard keeps moving).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::engine::{dead_letters, run_until_caught_up, write_config};
use common::kafka;

/// The items of the test, by partition key, in the order written.
const POISON: [&str; 5] = ["lone", "nul", "big", "conflict", "huge"];

async fn write_poison(table: &str) {
    let item = |pk: &str, rest: &str| {
        format!("{{\"pk\":{{\"S\":\"{pk}\"}},\"sk\":{{\"N\":\"1\"}}{rest}}}")
    };
    common::raw_put_item(table, &item("lone", ",\"v\":{\"S\":\"x\\ud800y\"}")).await;
    common::raw_put_item(table, &item("nul", ",\"v\":{\"S\":\"a\\u0000b\"}")).await;
    let blob = "b".repeat(399_000);
    common::raw_put_item(table, &item("big", &format!(",\"v\":{{\"S\":\"{blob}\"}}"))).await;
    common::raw_put_item(table, &item("conflict", ",\"amount\":{\"S\":\"twelve\"}")).await;
    let digits = "9".repeat(38);
    common::raw_put_item(
        table,
        &item("huge", &format!(",\"amount\":{{\"N\":\"{digits}\"}}")),
    )
    .await;
    common::raw_put_item(table, &item("after", ",\"amount\":{\"N\":\"12.5\"}")).await;
}

/// Partition keys of the items each stage (`decode`, `sink:<name>`)
/// dead-lettered.
fn dead_lettered(dir: &std::path::Path, table: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_stage: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let path = dir.join(format!("state/dead-letters/{table}.jsonl"));
    let letters = if path.exists() {
        dead_letters(dir, table)
    } else {
        Vec::new()
    };
    for letter in letters {
        let record = &letter["record"];
        let pk = record["keys"]["pk"]["S"]
            .as_str()
            .or_else(|| record["dynamodb"]["Keys"]["pk"]["S"].as_str())
            .unwrap_or("?")
            .to_owned();
        let stage = letter["stage"].as_str().unwrap_or("?").to_owned();
        println!("dead letter: {stage} {pk}: {:.200}", letter["error"]);
        by_stage.entry(stage).or_default().insert(pk);
    }
    by_stage
}

fn sinks(dir: &std::path::Path, schema: &str, database: &str, topic: &str) -> String {
    let es = common::es_index::es_sink(
        dir,
        &common::opensearch::url(),
        r#"{"mappings":{"properties":{"amount":{"type":"long"}}}}"#,
        "",
    );
    format!(
        "{sqlite}\n[[sinks]]\ntype = \"jsonl\"\ndir = \"{jsonl}\"\n\n\
         [[sinks]]\ntype = \"postgres\"\nurl = \"{pg}\"\nschema = \"{schema}\"\ncreate_table = true\n\n\
         [[sinks]]\ntype = \"clickhouse\"\nurl = \"{ch}\"\ndatabase = \"{database}\"\ncreate_table = true\n\
         [[sinks.columns]]\nname = \"amount\"\ntype = \"Nullable(Decimal(16, 2))\"\n\n\
         [[sinks]]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\ncreate_topics = true\n\n{es}",
        sqlite = common::engine::sqlite_sink(&dir.join("replica.db")),
        jsonl = dir.join("changes").display(),
        pg = common::fleet::postgres_url(),
        ch = common::clickhouse::url(),
        brokers = kafka::brokers(),
    )
}

/// Partition keys present in each sink after the run.
async fn landed(
    dir: &std::path::Path,
    table: &str,
    schema: &str,
    database: &str,
    topic: &str,
) -> BTreeMap<&'static str, BTreeSet<String>> {
    let pks = |keys: Vec<String>| keys.into_iter().collect::<BTreeSet<String>>();
    let mut out = BTreeMap::new();
    let sqlite = common::replica_if_present(&dir.join("replica.db"), table).unwrap_or_default();
    out.insert(
        "sqlite",
        pks(sqlite.into_keys().map(|(pk, _)| pk).collect()),
    );
    let pg = common::fleet::postgres().await;
    let live = common::postgres::live(&pg, schema, table).await;
    out.insert(
        "postgres",
        pks(live.into_keys().map(|(pk, _)| pk).collect()),
    );
    let clickhouse = common::clickhouse::state(database, table).await;
    out.insert(
        "clickhouse",
        pks(clickhouse.into_keys().map(|(pk, _)| pk).collect()),
    );
    let documents = common::opensearch::documents(&common::es_index::index_of(table)).await;
    out.insert(
        "elasticsearch",
        pks(documents
            .keys()
            .map(|id| id.split("~~").next().unwrap_or("").to_owned())
            .collect()),
    );
    let records = kafka::read_topic(topic, "read_committed");
    let keys = kafka::last_by_key(&records).into_keys();
    out.insert(
        "kafka",
        pks(keys
            .filter_map(|key| {
                let key: serde_json::Value = serde_json::from_str(&key).ok()?;
                key["pk"].as_str().map(str::to_owned)
            })
            .collect()),
    );
    let mut jsonl = BTreeSet::new();
    for entry in std::fs::read_dir(dir.join("changes").join(table))
        .into_iter()
        .flatten()
        .flatten()
    {
        for line in std::fs::read_to_string(entry.path())
            .unwrap_or_default()
            .lines()
        {
            let event: serde_json::Value = serde_json::from_str(line).expect("event");
            if let Some(pk) = event["keys"]["pk"]["S"].as_str() {
                jsonl.insert(pk.to_owned());
            }
        }
    }
    out.insert("jsonl", jsonl);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_records_land_or_are_dead_lettered_and_the_shard_moves_on() {
    let client = common::client().await;
    let table = common::unique_table("poison");
    common::create_table(&client, &table).await;
    write_poison(&table).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let schema = common::unique_table("poison_pg");
    let database = common::clickhouse::unique_database("poison_ch");
    let topic = format!("{}.{{table}}", kafka::unique_topic_prefix("poison"));
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &sinks(dir.path(), &schema, &database, &topic),
    );
    let config_path = config.clone();
    tokio::task::spawn_blocking(move || run_until_caught_up(&config_path))
        .await
        .expect("run");

    let topic = topic.replace("{table}", &table);
    let landed = landed(dir.path(), &table, &schema, &database, &topic).await;
    let letters = dead_lettered(dir.path(), &table);
    let decoded_away = letters.get("decode").cloned().unwrap_or_default();
    for (sink, present) in &landed {
        assert!(
            present.contains("after"),
            "{sink} never got the item after the poison: {present:?}"
        );
        let refused = letters
            .get(&format!("sink:{sink}"))
            .cloned()
            .unwrap_or_default();
        for pk in POISON {
            let fate = if present.contains(pk) {
                "landed"
            } else if refused.contains(pk) {
                "dead-lettered by the sink"
            } else if decoded_away.contains(pk) {
                "dead-lettered at decode"
            } else {
                panic!("{sink} lost {pk}: neither in the sink nor dead-lettered ({letters:?})")
            };
            println!("{sink:>13} {pk:>8}: {fate}");
            assert_eq!(fate, expected_fate(sink, pk), "{sink} {pk}");
        }
    }
}

/// What each sink does with each poison item (a change is a regression).
fn expected_fate(sink: &str, pk: &str) -> &'static str {
    match (sink, pk) {
        // Not valid Unicode: no sink could store it as text.
        (_, "lone") => "dead-lettered at decode",
        // PostgreSQL's text and jsonb cannot hold U+0000.
        ("postgres", "nul") => "dead-lettered by the sink",
        // Typed targets: a Decimal(16, 2) column, a `long` field.
        ("clickhouse" | "elasticsearch", "conflict" | "huge") => "dead-lettered by the sink",
        _ => "landed",
    }
}
