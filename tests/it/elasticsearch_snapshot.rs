//! Snapshots into an OpenSearch-API index (osmem-server) from DynamoDB
//! Local: a table scanned while a writer changes it converges (the snapshot
//! overlap never regresses a document), and a re-snapshot after lost
//! changes deletes the documents of items deleted meanwhile (the sweep).

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::bulk;
use common::engine::{command, run_until_caught_up, set_table_option, write_config};
use common::es_index::{assert_index_equals, es_sink, index_of, UNMAPPED};
use common::opensearch;

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_overlapping_a_writer_converges() {
    const ITEMS: usize = 5_000;
    let client = common::client().await;
    let table = common::unique_table("es_snap");
    common::create_table(&client, &table).await;
    bulk::load(&client, &table, ITEMS, 4).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &es_sink(dir.path(), &opensearch::url(), UNMAPPED, ""),
    );
    set_table_option(
        &config,
        &table,
        "snapshot = \"initial\"\nsnapshot_segments = 4",
    );
    let log = dir.path().join("engine.log");
    let mut engine = command(&[
        "run",
        "--config",
        &config.display().to_string(),
        "--exit-when-caught-up",
    ])
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).expect("log file"))
    .spawn()
    .expect("start the engine");
    // Changes while the snapshot runs: the same items in the Scan's pages
    // and in the stream, in either order.
    let mut seed = 1;
    let mut during = 0;
    let status = loop {
        if let Some(status) = engine.try_wait().expect("engine") {
            break status;
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("snapshot started") && !text.contains("snapshot finished") {
            bulk::churn(&client, &table, ITEMS, 20, seed).await;
            during += 20;
            seed += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{text}");
    assert!(during > 0, "no change during the snapshot:\n{text}");
    bulk::churn(&client, &table, ITEMS, 100, 999).await;
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    assert_index_equals(&index_of(&table), &common::scan(&client, &table).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resnapshot_deletes_what_was_deleted_while_changes_were_lost() {
    const ITEMS: usize = 400;
    let client = common::client().await;
    let table = common::unique_table("es_needed");
    common::create_table(&client, &table).await;
    bulk::load(&client, &table, ITEMS, 4).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &es_sink(dir.path(), &opensearch::url(), UNMAPPED, ""),
    );
    set_table_option(&config, &table, "snapshot = \"when_needed\"");
    let run = |config: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || run_until_caught_up(&config))
    };
    run(config.clone()).await.expect("run");
    let index = index_of(&table);
    assert_index_equals(&index, &common::scan(&client, &table).await).await;

    // Changes made while the stream is off are in no stream: lost, deletes
    // included. Re-enabling makes a new stream and the engine re-snapshots.
    common::set_stream(&client, &table, false).await;
    let [_, deleted, _] = bulk::churn(&client, &table, ITEMS, 200, 11).await;
    assert!(deleted > 0);
    common::set_stream(&client, &table, true).await;
    bulk::churn(&client, &table, ITEMS, 40, 12).await;
    let second = run(config.clone()).await.expect("run");
    let text = String::from_utf8_lossy(&second.stderr);
    assert!(text.contains("re-snapshotting the table"), "{text}");
    assert!(
        text.contains("documents it did not see are deleted"),
        "{text}"
    );
    assert_index_equals(&index, &common::scan(&client, &table).await).await;
}
