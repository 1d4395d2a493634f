//! Against DynamoDB Local and an OpenSearch-API server (osmem-server): the
//! index equals a Scan of the table document for document through SIGKILLs;
//! deletes are gone (or tombstones in `soft_delete` mode, sent gzipped and
//! routed by partition key); an older archive replayed into the index
//! regresses nothing; a document the mapping refuses is dead-lettered while
//! the rest is indexed; a period of 429 answers loses nothing.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::engine::{command, dead_letters, run_until_caught_up, spawn, write_config};
use common::es_index::{
    assert_index_equals, es_sink, index_difference, index_of, wait_for_documents, UNMAPPED,
};
use common::http_fault::{HttpFaultProxy, Mode};
use common::observe::{free_port, get};
use common::opensearch;
use dynamo_cdc::model::{AttributeValue, Item};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn documents_equal_the_table_through_kills() {
    let client = common::client().await;
    let table = common::unique_table("es");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 120, 500, 91, 4).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &[&table],
        "batch_size = 50",
        &es_sink(dir.path(), &opensearch::url(), UNMAPPED, ""),
    );
    let index = index_of(&table);
    for round in 0..2u64 {
        let log = dir.path().join(format!("engine-{round}.log"));
        let mut engine = spawn(&config, &log);
        wait_for_documents(&index).await;
        common::workload::run(&client, &table, 120, 200, 92 + round, 4).await;
        engine.kill().expect("SIGKILL");
        engine.wait().expect("reap");
    }
    common::workload::run(&client, &table, 120, 200, 95, 4).await;
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let items = common::scan(&client, &table).await;
    assert_index_equals(&index, &items).await;

    // A 38-digit number is a string with every digit, not a rounded double.
    let documents = opensearch::documents(&index).await;
    let big = documents
        .values()
        .find_map(|doc| doc.get("big"))
        .expect("a document with a 38-digit number");
    assert!(big.as_str().is_some_and(|s| s.len() >= 38), "big is {big}");
    let any = documents.values().next().expect("a document");
    assert_eq!(any["dynamodb"]["table"], Value::from(table.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn soft_deletes_keep_versioned_tombstones_gzipped_and_routed() {
    let client = common::client().await;
    let table = common::unique_table("es_soft");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 40, 300, 96, 2).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &es_sink(
            dir.path(),
            &opensearch::url(),
            UNMAPPED,
            "deletes = \"soft_delete\"\ngzip = true\nrouting = \"partition_key\"",
        ),
    );
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let items = common::scan(&client, &table).await;
    let index = index_of(&table);
    assert_index_equals(&index, &items).await;
    let tombstones: Vec<Value> = opensearch::documents(&index)
        .await
        .into_values()
        .filter(|doc| doc.get("dynamodb_deleted").is_some())
        .collect();
    assert!(!tombstones.is_empty(), "the workload deletes items");
    for tombstone in &tombstones {
        assert_eq!(tombstone["dynamodb_deleted"], Value::Bool(true));
        assert_eq!(tombstone["dynamodb"]["op"], Value::from("remove"));
        assert!(tombstone.get("pk").is_some() && tombstone.get("sk").is_some());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_archive_replayed_regresses_nothing() {
    let client = common::client().await;
    let table = common::unique_table("es_replay");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 60, 300, 97, 2).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let archive = dir.path().join("archive");
    let sinks = format!(
        "{}\n[[sinks]]\ntype = \"jsonl\"\ndir = \"{}\"\nrotate_bytes = 20000\n",
        es_sink(dir.path(), &opensearch::url(), UNMAPPED, ""),
        archive.display()
    );
    let config = write_config(dir.path(), &[&table], "", &sinks);
    let first = config.clone();
    tokio::task::spawn_blocking(move || run_until_caught_up(&first))
        .await
        .expect("run");
    // The archive as it stood after the first run: older changes only.
    let old_archive = dir.path().join("old-archive");
    copy_dir(&archive.join(&table), &old_archive);
    common::workload::run(&client, &table, 60, 300, 98, 2).await;
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let items = common::scan(&client, &table).await;
    let index = index_of(&table);
    assert_index_equals(&index, &items).await;

    let replay_dir = dir.path().join("replay");
    std::fs::create_dir_all(&replay_dir).expect("dir");
    let replay_config = write_config(
        &replay_dir,
        &[&table],
        "",
        &es_sink(&replay_dir, &opensearch::url(), UNMAPPED, ""),
    );
    let mut files: Vec<String> = std::fs::read_dir(&old_archive)
        .expect("archive")
        .flatten()
        .map(|e| e.path().display().to_string())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut args = vec![
        "replay".to_owned(),
        "--config".to_owned(),
        replay_config.display().to_string(),
        "--table".to_owned(),
        table.clone(),
    ];
    args.extend(files);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = command(&args).output().expect("replay");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_index_equals(&index, &items).await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_document_the_mapping_refuses_is_dead_lettered_and_the_rest_indexed() {
    let client = common::client().await;
    let table = common::unique_table("es_refused");
    common::create_table(&client, &table).await;
    let put = |pk: &str, count: AttributeValue| {
        let item = Item::from([
            ("pk".to_owned(), AttributeValue::S(pk.into())),
            (
                "sk".to_owned(),
                AttributeValue::N(dynamo_cdc::model::Number::parse("1").expect("number")),
            ),
            ("count".to_owned(), count),
        ]);
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(common::values::to_sdk_item(&item)))
            .send()
    };
    let number = |text: &str| AttributeValue::N(dynamo_cdc::model::Number::parse(text).expect("n"));
    put("good-1", number("5")).await.expect("put");
    put("bad", AttributeValue::S("twelve".into()))
        .await
        .expect("put");
    put("good-2", number("7")).await.expect("put");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &es_sink(
            dir.path(),
            &opensearch::url(),
            r#"{"mappings":{"properties":{"count":{"type":"long"}}}}"#,
            "",
        ),
    );
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let index = index_of(&table);
    let documents = opensearch::documents(&index).await;
    assert_eq!(
        documents.keys().collect::<Vec<_>>(),
        vec!["good-1~~1", "good-2~~1"]
    );
    let letters = dead_letters(dir.path(), &table);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["stage"], Value::from("sink:elasticsearch"));
    let error = letters[0]["error"].as_str().expect("error");
    assert!(error.contains("mapper_parsing_exception"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_period_of_429_answers_is_retried_and_loses_nothing() {
    let client = common::client().await;
    let table = common::unique_table("es_429");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 60, 200, 99, 2).await;
    let proxy = HttpFaultProxy::start(&opensearch::url());
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &[&table],
        "batch_size = 20",
        &format!(
            "[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n{}",
            es_sink(dir.path(), &proxy.url(), UNMAPPED, "item_retries = 3")
        ),
    );
    let log = dir.path().join("engine.log");
    let mut engine = spawn(&config, &log);
    let index = index_of(&table);
    wait_for_documents(&index).await;
    proxy.set_mode(Mode::TooManyRequests);
    common::workload::run(&client, &table, 60, 150, 100, 2).await;
    let refused = proxy.bulk_requests();
    common::wait_for_async("429 answers", Duration::from_secs(60), || async {
        proxy.bulk_requests() > refused + 3
    })
    .await;
    proxy.set_mode(Mode::RejectItems { every: 3 });
    common::workload::run(&client, &table, 60, 150, 101, 2).await;
    common::wait_for_async("items answered 429", Duration::from_secs(60), || async {
        proxy.rejected_items() > 0
    })
    .await;
    let rejected_requests = proxy.bulk_requests() - refused;
    proxy.set_mode(Mode::Forward);
    let healed = std::time::Instant::now();
    let items = common::scan(&client, &table).await;
    common::wait_for_async("the index to catch up", Duration::from_secs(90), || async {
        index_difference(&index, &items).await.is_none()
    })
    .await;
    // Reported in docs/RELIABILITY.md.
    eprintln!(
        "429 period: {rejected_requests} _bulk requests seen while refusing or rejecting items, \
         {} items answered 429; converged {:.1} s after the faults ended",
        proxy.rejected_items(),
        healed.elapsed().as_secs_f64()
    );
    let (_, metrics) = get(&format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("the metrics endpoint answers");
    for series in [
        r#"dynamo_cdc_sink_requests_total{sink="elasticsearch",outcome="retry"}"#,
        r#"dynamo_cdc_sink_items_total{sink="elasticsearch",result="retried"}"#,
        r#"dynamo_cdc_sink_items_total{sink="elasticsearch",result="written"}"#,
        r#"dynamo_cdc_sink_request_duration_seconds_count{sink="elasticsearch"}"#,
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    engine.kill().expect("stop");
    engine.wait().expect("reap");
    assert_index_equals(&index, &items).await;
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logged.contains("retrying items"), "{logged}");
}
