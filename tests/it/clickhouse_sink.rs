//! Against DynamoDB Local and Debian's ClickHouse server (18.16): versioned
//! state converges through a SIGKILL, the change log gets every change, and
//! values that do not fit mapped columns are dead-lettered while the rest arrives.

use crate::common;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::engine::{dead_letters, records_read, run_until_caught_up, spawn, write_config};

/// The dead letters the engine wrote for `table` under a test's directory.
fn clickhouse_sink(database: &str, extra: &str) -> String {
    format!(
        "[[sinks]]\ntype = \"clickhouse\"\nurl = \"{}\"\ndatabase = \"{database}\"\ncreate_table = true\n{extra}\n",
        common::clickhouse::url()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn state_table_converges_through_a_crash() {
    let client = common::client().await;
    let table = common::unique_table("ch_state");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 120, 500, 31, 4).await;
    let database = common::clickhouse::unique_database("cdc");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &[&table],
        "batch_size = 50",
        &clickhouse_sink(
            &database,
            "[sinks.batch]\nmax_records = 100\nmax_age = \"20ms\"",
        ),
    );

    // First run: killed once rows have arrived.
    let log = dir.path().join("engine.log");
    let mut engine = spawn(&config, &log);
    common::wait_for_async(
        common::WithLog("rows to arrive", &log),
        Duration::from_secs(60),
        || async {
            let count = common::clickhouse::query(&format!(
                "SELECT count() FROM system.tables WHERE database = '{database}'"
            ))
            .await;
            count.trim() == "1"
                && common::clickhouse::query(&format!("SELECT count() FROM `{database}`.`{table}`"))
                    .await
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0)
                    > 0
        },
    )
    .await;
    engine.kill().expect("SIGKILL");
    engine.wait().expect("reap");

    // More changes, then a run to the end.
    common::workload::run(&client, &table, 120, 300, 32, 4).await;
    let config_clone = config.clone();
    tokio::task::spawn_blocking(move || run_until_caught_up(&config_clone))
        .await
        .expect("run");
    let expected = common::scan(&client, &table).await;
    common::assert_same(
        &expected,
        &common::clickhouse::state(&database, &table).await,
    );
    let deleted = common::clickhouse::query(&format!(
        "SELECT count() FROM `{database}`.`{table}` FINAL WHERE _is_deleted = 1"
    ))
    .await;
    assert!(
        deleted.trim().parse::<u64>().expect("count") > 0,
        "tombstones are kept"
    );
    assert!(!dir.path().join("state/dead-letters").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn changelog_gets_every_change() {
    let client = common::client().await;
    let table = common::unique_table("ch_log");
    common::create_table(&client, &table).await;
    let counts = common::workload::run(&client, &table, 30, 200, 41, 2).await;
    let database = common::clickhouse::unique_database("cdc");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &clickhouse_sink(&database, "mode = \"changelog\""),
    );
    let output = tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let body = common::clickhouse::query(&format!(
        "SELECT _op, count() FROM `{database}`.`{table}` GROUP BY _op ORDER BY _op FORMAT TabSeparated"
    ))
    .await;
    let total: u64 = body
        .lines()
        .filter_map(|l| l.split('\t').nth(1)?.parse::<u64>().ok())
        .sum();
    assert_eq!(total, records_read(&output));
    assert!(
        body.contains(&format!("remove\t{}", counts.deletes)),
        "{body}"
    );
    // One row per change: no sequence number twice in a run without crashes.
    let duplicates = common::clickhouse::query(&format!(
        "SELECT count() - uniqExact(_sequence) FROM `{database}`.`{table}`"
    ))
    .await;
    assert_eq!(duplicates.trim(), "0");
}

#[tokio::test(flavor = "multi_thread")]
async fn values_that_do_not_fit_mapped_columns_are_dead_lettered() {
    let client = common::client().await;
    let table = common::unique_table("ch_map");
    common::create_table(&client, &table).await;
    let put = |pk: &str, amount: AttributeValue| {
        client
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(pk.to_owned()))
            .item("sk", AttributeValue::N("1".to_owned()))
            .item("amount", amount)
            .item("status", AttributeValue::S("ok".to_owned()))
            .send()
    };
    put("good-1", AttributeValue::N("12.50".into()))
        .await
        .expect("put");
    put("bad-text", AttributeValue::S("twelve".into()))
        .await
        .expect("put");
    put("bad-scale", AttributeValue::N("1.234".into()))
        .await
        .expect("put");
    put("good-2", AttributeValue::N("-99999999999999.99".into()))
        .await
        .expect("put");
    let database = common::clickhouse::unique_database("cdc");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &clickhouse_sink(
            &database,
            "[[sinks.columns]]\nname = \"amount\"\ntype = \"Decimal(16, 2)\"\n[[sinks.columns]]\nname = \"state\"\nattribute = \"status\"\ntype = \"Nullable(String)\"",
        ),
    );
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let rows = common::clickhouse::query(&format!(
        "SELECT pk, toString(amount), state FROM `{database}`.`{table}` FINAL ORDER BY pk FORMAT TabSeparated"
    ))
    .await;
    assert_eq!(rows, "good-1\t12.50\tok\ngood-2\t-99999999999999.99\tok\n");
    let letters = dead_letters(dir.path(), &table);
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(letters.iter().all(|l| l["stage"] == "sink:clickhouse"));
    let reasons: Vec<&str> = letters
        .iter()
        .map(|l| l["error"].as_str().expect("error"))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("a S value does not fit a Decimal(16, 2) column")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("more than 2 decimal places")),
        "{reasons:?}"
    );
    assert!(letters
        .iter()
        .any(|l| l["record"]["keys"]["pk"]["S"] == "bad-text"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_the_server_rejects_are_found_and_dead_lettered() {
    let client = common::client().await;
    let table = common::unique_table("ch_bisect");
    common::create_table(&client, &table).await;
    for (pk, status) in [
        ("a", "1"),
        ("b", "shipped"),
        ("c", "0"),
        ("d", "1"),
        ("e", "lost"),
    ] {
        client
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(pk.to_owned()))
            .item("sk", AttributeValue::N("1".to_owned()))
            .item("status", AttributeValue::S(status.to_owned()))
            .send()
            .await
            .expect("put");
    }
    // The table exists with `status` as UInt8 while the mapping sends strings:
    // only the server can tell which rows fail.
    let database = common::clickhouse::unique_database("cdc");
    common::clickhouse::query(&format!("CREATE DATABASE `{database}`")).await;
    common::clickhouse::query(&format!(
        "CREATE TABLE `{database}`.`{table}` (pk String, sk String, _item String, _version UInt64, \
         _is_deleted UInt8, _approx_time_ms Int64, status UInt8) ENGINE = ReplacingMergeTree(_version) ORDER BY (pk, sk)"
    ))
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = clickhouse_sink(
        &database,
        "[[sinks.columns]]\nname = \"status\"\ntype = \"String\"",
    )
    .replace("create_table = true", "create_table = false");
    let config = write_config(dir.path(), &[&table], "", &sink);
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let rows = common::clickhouse::query(&format!(
        "SELECT pk, status FROM `{database}`.`{table}` FINAL ORDER BY pk FORMAT TabSeparated"
    ))
    .await;
    assert_eq!(rows, "a\t1\nc\t0\nd\t1\n");
    let letters = dead_letters(dir.path(), &table);
    let mut keys: Vec<&str> = letters
        .iter()
        .map(|l| l["record"]["keys"]["pk"]["S"].as_str().expect("pk"))
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["b", "e"]);
    assert!(
        letters.iter().all(|l| l["error"]
            .as_str()
            .is_some_and(|e| e.contains("ClickHouse rejected the row") && e.contains("Code: "))),
        "{letters:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_mapped_type_and_awkward_text_survive_the_row_format() {
    let client = common::client().await;
    let table = common::unique_table("ch_types");
    common::create_table(&client, &table).await;
    let awkward = "tab\there\nnewline \\ backslash 'quote' \"double\" é";
    client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("a\tb".to_owned()))
        .item("sk", AttributeValue::N("1".to_owned()))
        .item("text", AttributeValue::S(awkward.to_owned()))
        .item("count", AttributeValue::N("-42".to_owned()))
        .item("ratio", AttributeValue::N("0.125".to_owned()))
        .item("at", AttributeValue::N("1700000000".to_owned()))
        .item(
            "tags",
            AttributeValue::Ss(vec![
                "x'y".to_owned(),
                "back\\slash".to_owned(),
                "t\tu".to_owned(),
            ]),
        )
        .item("flag", AttributeValue::Bool(true))
        .send()
        .await
        .expect("put");
    client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("gone".to_owned()))
        .item("sk", AttributeValue::N("2".to_owned()))
        .item("text", AttributeValue::S("soon deleted".to_owned()))
        .item("count", AttributeValue::N("1".to_owned()))
        .item("ratio", AttributeValue::N("1".to_owned()))
        .item("at", AttributeValue::N("1".to_owned()))
        .item("tags", AttributeValue::Ss(vec!["z".to_owned()]))
        .item("flag", AttributeValue::Bool(false))
        .send()
        .await
        .expect("put");
    client
        .delete_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("gone".to_owned()))
        .key("sk", AttributeValue::N("2".to_owned()))
        .send()
        .await
        .expect("delete");
    let database = common::clickhouse::unique_database("cdc");
    let dir = tempfile::tempdir().expect("temp dir");
    let columns = [
        ("text", "String"),
        ("count", "Int64"),
        ("ratio", "Float64"),
        ("at", "DateTime"),
        ("tags", "Array(String)"),
        ("flag", "Bool"),
        ("missing", "Nullable(DateTime)"),
    ]
    .iter()
    .map(|(name, ty)| format!("[[sinks.columns]]\nname = \"{name}\"\ntype = \"{ty}\"\n"))
    .collect::<String>();
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &clickhouse_sink(&database, &columns),
    );
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let rows = common::clickhouse::query(&format!(
        "SELECT pk, text, count, ratio, toUnixTimestamp(at), tags, flag, isNull(missing), _is_deleted \
         FROM `{database}`.`{table}` FINAL ORDER BY pk FORMAT JSONEachRow"
    ))
    .await;
    let rows: Vec<serde_json::Value> = rows
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let live = &rows[0];
    assert_eq!(live["pk"], "a\tb");
    assert_eq!(live["text"], awkward);
    assert_eq!(live["count"], "-42");
    assert_eq!(live["ratio"], 0.125);
    assert_eq!(live["toUnixTimestamp(at)"], 1_700_000_000);
    let mut tags: Vec<&str> = live["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t.as_str().expect("tag"))
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, ["back\\slash", "t\tu", "x'y"]);
    assert_eq!(live["flag"], 1);
    assert_eq!(live["isNull(missing)"], 1);
    assert_eq!(live["_is_deleted"], 0);
    // The tombstone: key and deletion kept, mapped columns at their defaults.
    let tombstone = &rows[1];
    assert_eq!(tombstone["pk"], "gone");
    assert_eq!(tombstone["_is_deleted"], 1);
    assert_eq!(tombstone["text"], "");
    assert_eq!(tombstone["tags"], serde_json::json!([]));
}
