//! The transform stage end to end: filter patterns on a live DynamoDB
//! Local stream (only matching changes arrive, the checkpoint moves past
//! the rest), tables routed to different sinks, per-sink projections, the
//! enrichment join and filters in `run` and in a snapshot, filters in
//! `replay`, and `filter-test` on real Lambda records.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aws_sdk_dynamodb::types::AttributeValue as Sdk;
use aws_sdk_dynamodb::Client;
use common::engine::{command, records_read, run_until_caught_up, sqlite_sink, write_config};
use dynamo_cdc::model::{AttributeValue, Item};

/// A real Lambda event from AWS SAM CLI: an INSERT, a MODIFY and a REMOVE
/// of item `Id = 101` in table `ExampleTableWithStream`.
const SAM_EVENT: &str = "../shared/fixtures/dynamodb-streams-real/\
     aws_aws-sam-cli__samcli_lib_generated_sample_events_events_dynamodb_DynamoDBUpdate.json";

/// Puts item `pk` (sort key 1) with a status, a secret and a customer id.
async fn put(client: &Client, table: &str, pk: &str, status: &str) {
    client
        .put_item()
        .table_name(table)
        .item("pk", Sdk::S(pk.into()))
        .item("sk", Sdk::N("1".into()))
        .item("status", Sdk::S(status.into()))
        .item("secret", Sdk::S(format!("secret of {pk}")))
        .item("customer", Sdk::S(format!("c{}", pk.len() % 3)))
        .send()
        .await
        .expect("put an item");
}

/// Puts items `<prefix><n>` for `n` in `range`, paid when `paid(n)`.
async fn put_statuses(
    client: &Client,
    table: &str,
    prefix: &str,
    range: std::ops::Range<usize>,
    paid: impl Fn(usize) -> bool,
) {
    for n in range {
        let status = if paid(n) { "paid" } else { "new" };
        put(client, table, &format!("{prefix}{n}"), status).await;
    }
}

async fn delete(client: &Client, table: &str, pk: &str) {
    client
        .delete_item()
        .table_name(table)
        .key("pk", Sdk::S(pk.into()))
        .key("sk", Sdk::N("1".into()))
        .send()
        .await
        .expect("delete an item");
}

/// The files of a jsonl sink's directory (one folder per table), in name order.
fn jsonl_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|tables| {
            tables
                .flatten()
                .flat_map(|table| {
                    std::fs::read_dir(table.path())
                        .into_iter()
                        .flatten()
                        .flatten()
                })
                .map(|file| file.path())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// (op, pk) of every line of the JSON Lines files under `dir`, with the
/// attribute names of each line's images.
fn jsonl_changes(dir: &Path) -> Vec<(String, String, BTreeSet<String>)> {
    let files = jsonl_files(dir);
    let mut out = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(&file).expect("read jsonl").lines() {
            let event: serde_json::Value = serde_json::from_str(line).expect("a change line");
            let mut names = BTreeSet::new();
            for image in ["new_image", "old_image"] {
                if let Some(fields) = event[image].as_object() {
                    names.extend(fields.keys().map(|name| format!("{image}.{name}")));
                }
            }
            let pk = event["keys"]["pk"]["S"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            out.push((
                event["op"].as_str().unwrap_or_default().to_owned(),
                pk,
                names,
            ));
        }
    }
    out
}

fn jsonl_sink(dir: &Path, extra: &str) -> String {
    format!(
        "[[sinks]]\ntype = \"jsonl\"\ndir = \"{}\"\n{extra}\n[sinks.batch]\nmax_age = \"20ms\"\n",
        dir.display()
    )
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_deliver_matching_changes_and_the_checkpoint_moves_past_the_rest() {
    let client = common::client().await;
    let table = common::unique_table("filtered");
    common::create_table(&client, &table).await;
    put_statuses(&client, &table, "o", 0..10, |n| n % 2 == 1).await;
    put(&client, &table, "o0", "paid").await;
    delete(&client, &table, "o1").await;
    delete(&client, &table, "o2").await;
    // The last change of the shard is one the filters drop.
    put(&client, &table, "o10", "new").await;

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    let config = write_config(dir.path(), &[&table], "", &jsonl_sink(&out, ""));
    common::engine::set_table_option(
        &config,
        &table,
        r#"filters = ['{"dynamodb": {"NewImage": {"status": {"S": ["paid"]}}}}', { eventName = ["REMOVE"] }]"#,
    );
    let config_for_run = config.clone();
    let first = tokio::task::spawn_blocking(move || run_until_caught_up(&config_for_run))
        .await
        .expect("run");
    assert!(stderr(&first).contains("filtered=6"), "{}", stderr(&first));

    let delivered: BTreeSet<(String, String)> = jsonl_changes(&out)
        .into_iter()
        .map(|(op, pk, _)| (op, pk))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("insert", "o1"),
        ("insert", "o3"),
        ("insert", "o5"),
        ("insert", "o7"),
        ("insert", "o9"),
        ("modify", "o0"),
        ("remove", "o1"),
        ("remove", "o2"),
    ]
    .into_iter()
    .map(|(op, pk)| (op.to_owned(), pk.to_owned()))
    .collect();
    assert_eq!(delivered, expected);

    // The checkpoint is the shard's last record, a filtered one.
    let last = common::streams::records(&table)
        .await
        .into_iter()
        .map(|(sequence, _)| sequence)
        .max()
        .expect("stream records");
    let config_arg = config.display().to_string();
    let shown = command(&["checkpoints", "show", "--config", &config_arg, "--json"])
        .output()
        .expect("checkpoints show");
    let checkpoints: Vec<serde_json::Value> = String::from_utf8_lossy(&shown.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect();
    let stored: Vec<u128> = checkpoints
        .iter()
        .filter_map(|row| row["sequence"].as_str()?.parse().ok())
        .collect();
    assert_eq!(stored.iter().max(), Some(&last), "{checkpoints:?}");

    // A second run reads nothing again and delivers nothing again.
    let second = tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    assert_eq!(records_read(&second), 0, "{}", stderr(&second));
    assert_eq!(jsonl_changes(&out).len(), expected.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_tables_routed_to_two_sinks() {
    let client = common::client().await;
    let orders = common::unique_table("routed_orders");
    let customers = common::unique_table("routed_customers");
    for table in [&orders, &customers] {
        common::create_table(&client, table).await;
        put_statuses(&client, table, "k", 0..5, |_| false).await;
        delete(&client, table, "k4").await;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (orders_db, customers_db) = (
        dir.path().join("orders.db"),
        dir.path().join("customers.db"),
    );
    let sinks = format!(
        "{}name = \"orders_replica\"\ntables = [\"{orders}\"]\n\n{}name = \"customers_replica\"\ntables = [\"{customers}\"]\n",
        sqlite_sink(&orders_db),
        sqlite_sink(&customers_db),
    );
    let config = write_config(dir.path(), &[&orders, &customers], "", &sinks);
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    common::assert_same(
        &common::scan(&client, &orders).await,
        &common::replica(&orders_db, &orders),
    );
    common::assert_same(
        &common::scan(&client, &customers).await,
        &common::replica(&customers_db, &customers),
    );
    assert!(common::replica_if_present(&orders_db, &customers).is_none());
    assert!(common::replica_if_present(&customers_db, &orders).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn per_sink_projections_leave_the_other_sinks_whole() {
    let client = common::client().await;
    let table = common::unique_table("projected");
    common::create_table(&client, &table).await;
    put_statuses(&client, &table, "p", 0..6, |_| false).await;
    put(&client, &table, "p0", "paid").await;
    delete(&client, &table, "p1").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (replica, out) = (dir.path().join("replica.db"), dir.path().join("slim"));
    let slim = r#"transforms = [
  { type = "exclude", attributes = ["secret"] },
  { type = "set", attribute = "label", template = "{pk}/{status}" },
  { type = "drop_old_image" },
]"#;
    let sinks = format!("{}\n{}", sqlite_sink(&replica), jsonl_sink(&out, slim));
    let config = write_config(dir.path(), &[&table], "", &sinks);
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");

    let scan = common::scan(&client, &table).await;
    assert!(scan.values().all(|item| item.contains_key("secret")));
    common::assert_same(&scan, &common::replica(&replica, &table));
    let changes = jsonl_changes(&out);
    assert_eq!(changes.len(), 8, "{changes:?}");
    for (op, pk, names) in &changes {
        assert!(
            !names.iter().any(|n| n.ends_with(".secret")),
            "{op} {pk}: {names:?}"
        );
        assert!(
            !names.iter().any(|n| n.starts_with("old_image.")),
            "{op} {pk}: {names:?}"
        );
        if op != "remove" {
            assert!(names.contains("new_image.label"), "{op} {pk}: {names:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn enrichment_and_filters_apply_in_the_snapshot_and_the_stream() {
    let client = common::client().await;
    let table = common::unique_table("enriched");
    common::create_table(&client, &table).await;
    put_statuses(&client, &table, "e", 0..8, |n| n % 2 == 0).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let dimension = dir.path().join("customers.csv");
    std::fs::write(&dimension, "id,name\nc0,Ada\nc1,Grace\n").expect("dimension");
    let replica = dir.path().join("replica.db");
    let enrich = format!(
        "[enrich]\npath = \"{}\"\nkey = \"id\"\nfield = \"customer\"\ncolumns = [\"name\"]\nprefix = \"customer_\"\n\n{}",
        dimension.display(),
        sqlite_sink(&replica)
    );
    let config = write_config(dir.path(), &[&table], "", &enrich);
    common::engine::set_table_option(
        &config,
        &table,
        "snapshot = \"initial\"\nfilters = ['{\"dynamodb\": {\"NewImage\": {\"status\": {\"S\": [\"paid\"]}}}}', '{\"eventName\": [\"REMOVE\"]}']",
    );
    let first_config = config.clone();
    tokio::task::spawn_blocking(move || run_until_caught_up(&first_config))
        .await
        .expect("snapshot run");
    // Stream changes after the snapshot: new paid and unpaid items, a delete.
    put_statuses(&client, &table, "e", 8..12, |n| n % 2 == 0).await;
    delete(&client, &table, "e0").await;
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("stream run");

    let names = BTreeMap::from([("c0", "Ada"), ("c1", "Grace")]);
    let expected: BTreeMap<(String, String), Item> = common::scan(&client, &table)
        .await
        .into_iter()
        .filter(|(_, item)| item.get("status") == Some(&AttributeValue::S("paid".into())))
        .map(|(key, mut item)| {
            if let Some(AttributeValue::S(customer)) = item.get("customer").cloned() {
                if let Some(name) = names.get(customer.as_str()) {
                    item.insert("customer_name".into(), AttributeValue::S((*name).into()));
                }
            }
            (key, item)
        })
        .collect();
    assert!(expected
        .values()
        .any(|item| item.contains_key("customer_name")));
    assert!(expected
        .values()
        .any(|item| !item.contains_key("customer_name")));
    common::assert_same(&expected, &common::replica(&replica, &table));
}

/// A pipeline config for the SAM event's table with one jsonl sink and
/// the table option `table_extra`.
fn sam_config(dir: &Path, table_extra: &str, sinks: &str) -> std::path::PathBuf {
    let text = format!(
        "state_dir = \"{}\"\n\n[[tables]]\nname = \"ExampleTableWithStream\"\n{table_extra}\n\n{sinks}",
        dir.join("state").display()
    );
    let path = dir.join("sam.toml");
    std::fs::write(&path, text).expect("config");
    path
}

#[test]
fn replay_filters_like_the_stream() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    let config = sam_config(
        dir.path(),
        r#"filters = ['{"eventName": ["INSERT", "REMOVE"]}']"#,
        &jsonl_sink(&out, ""),
    );
    let output = command(&[
        "replay",
        "--config",
        &config.display().to_string(),
        "--table",
        "ExampleTableWithStream",
        SAM_EVENT,
    ])
    .output()
    .expect("replay");
    assert!(output.status.success(), "{}", stderr(&output));
    let ops: Vec<String> = jsonl_files(&out)
        .into_iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).expect("read");
            text.lines()
                .map(|line| {
                    let event: serde_json::Value = serde_json::from_str(line).expect("line");
                    event["op"].as_str().unwrap_or_default().to_owned()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(ops, ["insert", "remove"]);
    assert!(
        stderr(&output).contains("filtered=1"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn filter_test_explains_each_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sinks = format!(
        "{}\n{}",
        jsonl_sink(&dir.path().join("all"), "name = \"all\""),
        jsonl_sink(
            &dir.path().join("slim"),
            "name = \"slim\"\nfilters = ['{\"eventName\": [\"MODIFY\"]}']\ntransforms = [{ type = \"include\", attributes = [\"label\"] }]",
        ),
    );
    let config = sam_config(
        dir.path(),
        "filters = ['{\"eventName\": [\"INSERT\", \"MODIFY\"]}', '{\"dynamodb\": {\"NewImage\": {\"Message\": {\"S\": [{\"prefix\": \"This\"}]}}}}']\n\
         transforms = [{ type = \"set\", attribute = \"label\", template = \"{Id}: {Message}\" }]",
        &sinks,
    );
    let output = command(&[
        "filter-test",
        "--config",
        &config.display().to_string(),
        SAM_EVENT,
    ])
    .output()
    .expect("filter-test");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("record 1: insert {\"Id\":{\"N\":\"101\"}}"),
        "{text}"
    );
    assert!(lines[1].contains("filters[0] matches; kept: "), "{text}");
    assert!(
        lines[1].contains(r#""label":{"S":"101: New item!"}"#),
        "{text}"
    );
    assert!(
        lines[2].contains("sink all: receives the change as the table's stage left it"),
        "{text}"
    );
    assert!(
        lines[3].contains("sink slim: its own stage: no filter matches; filtered out"),
        "{text}"
    );
    assert!(
        lines[5].contains("filters[0], filters[1] match; kept"),
        "{text}"
    );
    let slim_modify = lines[7];
    assert!(
        slim_modify.contains(
            r#""new_image":{"Id":{"N":"101"},"label":{"S":"101: This item has changed"}}"#
        ),
        "{text}"
    );
    assert!(
        lines[9].contains("no filter matches; filtered out"),
        "{text}"
    );
    assert!(text.ends_with("3 records: 2 kept, 1 filtered out, 0 dropped by a filter transform, 0 failed a transform (would be dead-lettered), 0 undecodable\n"), "{text}");

    let json = command(&[
        "filter-test",
        "--json",
        "--config",
        &config.display().to_string(),
        SAM_EVENT,
    ])
    .output()
    .expect("filter-test --json");
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect();
    assert_eq!(records.len(), 3);
    assert_eq!(records[1]["table"]["matched"], serde_json::json!([0, 1]));
    assert_eq!(records[2]["table"]["result"]["outcome"], "filtered");
    assert_eq!(
        records[0]["sinks"][1]["stage"]["result"]["outcome"],
        "filtered"
    );

    let bad = sam_config(
        dir.path(),
        "filters = ['{\"dynamodb\": {\"NewImge\": {}}}']",
        &sinks,
    );
    let refused = command(&[
        "filter-test",
        "--config",
        &bad.display().to_string(),
        SAM_EVENT,
    ])
    .output()
    .expect("filter-test");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("tables[0].filters[0]: dynamodb"),
        "{}",
        stderr(&refused)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_that_need_an_image_the_stream_lacks_are_refused() {
    let client = common::client().await;
    let table = common::unique_table("keys_only");
    common::create_table_with_view(
        &client,
        &table,
        aws_sdk_dynamodb::types::StreamViewType::KeysOnly,
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &jsonl_sink(&dir.path().join("out"), ""),
    );
    common::engine::set_table_option(
        &config,
        &table,
        r#"filters = ['{"dynamodb": {"NewImage": {"status": {"S": ["paid"]}}}}']"#,
    );
    let config_arg = config.display().to_string();
    let refused = command(&["run", "--config", &config_arg, "--exit-when-caught-up"])
        .output()
        .expect("run");
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(
        err.contains("tables[0].filters: every pattern needs dynamodb.NewImage")
            && err.contains("KeysOnly"),
        "{err}"
    );
    // A pattern on what a KEYS_ONLY stream carries is fine.
    let text = std::fs::read_to_string(&config).expect("config");
    let keys_only = text.replace(
        r#"'{"dynamodb": {"NewImage": {"status": {"S": ["paid"]}}}}'"#,
        r#"'{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "a"}]}}}}'"#,
    );
    std::fs::write(&config, keys_only).expect("config");
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_a_transform_cannot_handle_is_dead_lettered_and_the_rest_flow() {
    let client = common::client().await;
    let table = common::unique_table("cast");
    common::create_table(&client, &table).await;
    for (pk, amount) in [("a1", "12.50"), ("a2", "twelve"), ("a3", "7")] {
        client
            .put_item()
            .table_name(&table)
            .item("pk", Sdk::S(pk.into()))
            .item("sk", Sdk::N("1".into()))
            .item("amount", Sdk::S(amount.into()))
            .send()
            .await
            .expect("put");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (replica, out) = (dir.path().join("replica.db"), dir.path().join("out"));
    // The jsonl sink casts; the replica takes the changes as they are.
    let cast = r#"transforms = [{ type = "cast", attribute = "amount", to = "number" }]"#;
    let sinks = format!("{}\n{}", sqlite_sink(&replica), jsonl_sink(&out, cast));
    let config = write_config(dir.path(), &[&table], "", &sinks);
    let config_again = config.clone();
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    common::assert_same(
        &common::scan(&client, &table).await,
        &common::replica(&replica, &table),
    );
    let delivered: Vec<String> = jsonl_changes(&out)
        .into_iter()
        .map(|(_, pk, _)| pk)
        .collect();
    assert_eq!(delivered, ["a1", "a3"]);
    let letters = common::engine::dead_letters(dir.path(), &table);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["stage"], "transform:jsonl");
    assert!(
        letters[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("cast of \"amount\"")),
        "{letters:?}"
    );
    assert_eq!(letters[0]["record"]["keys"]["pk"]["S"], "a2");
    // The failed change was acknowledged: nothing is read again.
    let second = tokio::task::spawn_blocking(move || run_until_caught_up(&config_again))
        .await
        .expect("run");
    assert_eq!(records_read(&second), 0, "{}", stderr(&second));
}

#[test]
fn filter_test_reads_a_loader_configuration_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let loader = dir.path().join("load.toml");
    std::fs::write(
        &loader,
        format!(
            "state_dir = \"{}\"\ntransforms = [{{ type = \"drop\", attributes = [\"Message\"] }}]\n\
             [queue]\nurl = \"http://127.0.0.1:1/queue\"\n\
             [[tables]]\nname = \"ExampleTableWithStream\"\nkeys = [{{ name = \"Id\", type = \"N\" }}]\n\
             filters = ['{{\"eventName\": [\"MODIFY\"]}}']\n\n{}",
            dir.path().join("state").display(),
            jsonl_sink(&dir.path().join("out"), ""),
        ),
    )
    .expect("loader config");
    let output = command(&[
        "filter-test",
        "--loader",
        "--config",
        &loader.display().to_string(),
        SAM_EVENT,
    ])
    .output()
    .expect("filter-test");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains(r#"filters[0] matches; kept: {"table":"ExampleTableWithStream","op":"modify","keys":{"Id":{"N":"101"}},"new_image":{"Id":{"N":"101"}},"old_image":{"Id":{"N":"101"}}"#), "{text}");
    assert!(text.ends_with("3 records: 1 kept, 2 filtered out, 0 dropped by a filter transform, 0 failed a transform (would be dead-lettered), 0 undecodable\n"), "{text}");
}
