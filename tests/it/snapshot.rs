//! Snapshots against DynamoDB Local, SQLite and PostgreSQL: a table scanned
//! while a writer changes it converges; a snapshot killed
//! mid-way resumes from its segments' stored progress; `when_needed`
//! re-snapshots after changes were lost (a replaced stream, a vanished shard).

use crate::common;

use std::process::{Output, Stdio};
use std::time::Duration;

use common::engine::{
    command_in, run_until_caught_up_in, set_table_option, sqlite_sink, write_config,
};
use common::{bulk, postgres::live};

fn postgres_url() -> String {
    std::env::var("DYNAMO_CDC_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("DYNAMO_CDC_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh")
    })
}

/// "N snapshot items in M Scan pages" from a run's summary line.
fn snapshot_counts(output: &Output) -> (u64, u64) {
    let text = String::from_utf8_lossy(&output.stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains(" snapshot items in "))
        .unwrap_or_else(|| panic!("no summary line in:\n{text}"));
    let number = |text: &str| -> u64 {
        text.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {line:?}"))
    };
    let after_read = line.split("records read; ").nth(1).expect("summary");
    let pages = after_read
        .split(" snapshot items in ")
        .nth(1)
        .expect("summary");
    (number(after_read), number(pages))
}

fn spawn_logged(
    database: &str,
    config: &std::path::Path,
    log: &std::path::Path,
) -> std::process::Child {
    command_in(
        database,
        &[
            "run",
            "--config",
            &config.display().to_string(),
            "--exit-when-caught-up",
            "--progress-interval",
            "1s",
        ],
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(log).expect("log file"))
    .spawn()
    .expect("start the engine")
}

/// A snapshot racing a writer converges: the writer updates, deletes and
/// inserts items the Scan has read, has yet to read or reads mid-change, so
/// the same items arrive both as scanned rows and as stream changes. The
/// table lives in a DynamoDB Local database of its own (loading it waits for
/// no other test) and the snapshot is paced (`snapshot_max_items_per_second`)
/// so that it lasts seconds: the overlap does not depend on the table's size.
#[tokio::test(flavor = "multi_thread")]
async fn snapshot_with_a_concurrent_writer_converges() {
    const ITEMS: usize = 10_000;
    let database = common::own_database("snap");
    let client = common::client_in(&database).await;
    let table = common::unique_table("snap");
    common::create_table(&client, &table).await;
    bulk::load(&client, &table, ITEMS, 8).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let replica = dir.path().join("replica.db");
    let schema = common::unique_table("snap");
    let sinks = format!(
        "{}\n[[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"\ncreate_table = true\n",
        sqlite_sink(&replica),
        postgres_url()
    );
    let config = write_config(dir.path(), &[&table], "", &sinks);
    // 100-item pages at 2,000 items/s: the Scan takes at least 5 s.
    set_table_option(
        &config,
        &table,
        "snapshot = \"initial\"\nsnapshot_segments = 4\nsnapshot_page_size = 100\n\
         snapshot_max_items_per_second = 2000",
    );
    let log = dir.path().join("engine.log");
    let mut engine = spawn_logged(&database, &config, &log);
    // A writer keeps changing the table; count what it does during the snapshot.
    let in_snapshot = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (client, table) = (client.clone(), table.clone());
        let (in_snapshot, stop) = (in_snapshot.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut during, mut written) = (0, 0);
            let mut seed = 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                bulk::churn(&client, &table, ITEMS, 5, seed).await;
                seed += 1;
                written += 5;
                if in_snapshot.load(std::sync::atomic::Ordering::Relaxed) {
                    during += 5;
                }
            }
            (during, written)
        })
    };
    common::wait_for_async("the engine to exit", Duration::from_secs(600), || {
        let exited = engine.try_wait().expect("engine").is_some();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let running = text.contains("snapshot started") && !text.contains("snapshot finished");
        in_snapshot.store(running, std::sync::atomic::Ordering::Relaxed);
        if text.contains("snapshot finished") {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        std::future::ready(exited)
    })
    .await;
    let status = engine.wait().expect("engine");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (during, written) = writer.await.expect("writer");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{text}");
    assert!(
        during >= 50,
        "{during} writes during the snapshot, too few to overlap it:\n{text}"
    );
    assert!(text.contains("snapshot progress"), "{text}");
    // Changes after that run's end, then a catch-up run.
    bulk::churn(&client, &table, ITEMS, 100, 999).await;
    let config_clone = config.clone();
    let database_clone = database.clone();
    let second =
        tokio::task::spawn_blocking(move || run_until_caught_up_in(&database_clone, &config_clone))
            .await
            .expect("run");
    assert_eq!(snapshot_counts(&second).0, 0, "no second snapshot");
    // The stream resumed at the positions recorded when the snapshot began,
    // not at its start (which holds the loading inserts): the first run read
    // at most one record per write of the writer, far fewer than the table.
    let first_read = text
        .lines()
        .rev()
        .find(|l| l.contains("stopped:"))
        .and_then(|l| l.split("stopped: ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .expect("first run's summary");
    assert!(
        written < ITEMS,
        "{written} writes: too many to tell a resumed stream from a replayed one"
    );
    assert!(
        first_read <= written as u64,
        "{first_read} stream records read after the snapshot, the writer made {written} changes"
    );
    let expected = common::scan(&client, &table).await;
    assert!(expected.len() > ITEMS / 2);
    common::assert_same(&expected, &common::replica(&replica, &table));
    let (pg, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    common::assert_same(&expected, &live(&pg, &schema, &table).await);
    bulk::drop_table(&client, &table).await;
}

fn stored_progress(state: &std::path::Path, table: &str) -> (u64, u64) {
    let Ok(conn) = rusqlite::Connection::open(state.join("checkpoints.db")) else {
        return (0, 0);
    };
    conn.query_row(
        "SELECT coalesce(sum(pages), 0), coalesce(sum(items), 0) FROM snapshot_segments WHERE table_name = ?1",
        [table],
        |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64)),
    )
    .unwrap_or((0, 0))
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_snapshot_resumes_from_segment_progress() {
    const ITEMS: usize = 12_000;
    const PAGE: usize = 200;
    let database = common::own_database("snapkill");
    let client = common::client_in(&database).await;
    let table = common::unique_table("snap_kill");
    common::create_table(&client, &table).await;
    bulk::load(&client, &table, ITEMS, 8).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let replica = dir.path().join("replica.db");
    let config = write_config(dir.path(), &[&table], "", &sqlite_sink(&replica));
    set_table_option(
        &config,
        &table,
        &format!(
            "snapshot = \"initial\"\nsnapshot_segments = 4\nsnapshot_page_size = {PAGE}\n\
             snapshot_max_items_per_second = 2000"
        ),
    );
    let log = dir.path().join("engine.log");
    let mut engine = spawn_logged(&database, &config, &log);
    let state = dir.path().join("state");
    common::wait_for(
        "a quarter of the snapshot to be stored",
        Duration::from_secs(60),
        || stored_progress(&state, &table).1 >= (ITEMS / 4) as u64,
    );
    engine.kill().expect("SIGKILL");
    engine.wait().expect("reap");
    let (stored_pages, stored_items) = stored_progress(&state, &table);
    assert!(
        stored_items < ITEMS as u64,
        "the snapshot finished before the kill"
    );
    bulk::churn(&client, &table, ITEMS, 200, 5).await;

    // Without the budget, the restart resumes each segment after its last stored page.
    let config = write_config(dir.path(), &[&table], "", &sqlite_sink(&replica));
    set_table_option(
        &config,
        &table,
        &format!("snapshot = \"initial\"\nsnapshot_segments = 4\nsnapshot_page_size = {PAGE}"),
    );
    let config_clone = config.clone();
    let database_clone = database.clone();
    let output =
        tokio::task::spawn_blocking(move || run_until_caught_up_in(&database_clone, &config_clone))
            .await
            .expect("run");
    let (items, pages) = snapshot_counts(&output);
    let full_pages = (ITEMS / PAGE) as u64;
    assert!(
        pages < full_pages,
        "{pages} Scan pages after the restart; a full scan takes about {full_pages}"
    );
    assert!(
        pages + stored_pages >= full_pages,
        "{pages} + {stored_pages} pages cannot cover the table"
    );
    assert!(items < ITEMS as u64, "{items} items scanned again");
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("resuming the unfinished snapshot"), "{text}");
    common::assert_same(
        &common::scan(&client, &table).await,
        &common::replica(&replica, &table),
    );
    bulk::drop_table(&client, &table).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn when_needed_resnapshots_after_lost_changes() {
    const ITEMS: usize = 400;
    let database = common::own_database("snapneeded");
    let client = common::client_in(&database).await;
    let table = common::unique_table("snap_needed");
    common::create_table(&client, &table).await;
    bulk::load(&client, &table, ITEMS, 4).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let replica = dir.path().join("replica.db");
    let schema = common::unique_table("needed");
    let sinks = format!(
        "{}\n[[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"\ncreate_table = true\n",
        sqlite_sink(&replica),
        postgres_url()
    );
    let config = write_config(dir.path(), &[&table], "", &sinks);
    set_table_option(&config, &table, "snapshot = \"when_needed\"");
    let run = |config: std::path::PathBuf| {
        let database = database.clone();
        tokio::task::spawn_blocking(move || run_until_caught_up_in(&database, &config))
    };
    let first = run(config.clone()).await.expect("run");
    assert!(snapshot_counts(&first).0 >= ITEMS as u64);
    let (pg, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let check = |label: &str, expected: &std::collections::BTreeMap<(String, String), _>| {
        assert!(!expected.is_empty(), "{label}");
        common::assert_same(expected, &common::replica(&replica, &table));
    };
    let expected = common::scan(&client, &table).await;
    check("initial snapshot", &expected);

    // Changes made while the stream is off are in no stream: lost, including
    // deletes. Re-enabling makes a new stream.
    common::set_stream(&client, &table, false).await;
    let [_, deleted, _] = bulk::churn(&client, &table, ITEMS, 200, 11).await;
    assert!(deleted > 0);
    common::set_stream(&client, &table, true).await;
    bulk::churn(&client, &table, ITEMS, 40, 12).await;
    let second = run(config.clone()).await.expect("run");
    let text = String::from_utf8_lossy(&second.stderr);
    assert!(text.contains("re-snapshotting the table"), "{text}");
    assert!(text.contains("stream was replaced"), "{text}");
    assert!(snapshot_counts(&second).0 > 0);
    let expected = common::scan(&client, &table).await;
    check("after the stream was replaced", &expected);
    common::assert_same(&expected, &live(&pg, &schema, &table).await);

    // A checkpoint of a shard the stream no longer lists (its records expired).
    let stream = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("describe")
        .table
        .and_then(|t| t.latest_stream_arn)
        .expect("stream arn");
    {
        use dynamo_cdc::coordinator::{CheckpointStore, CheckpointUpdate, ShardKey};
        let mut store = CheckpointStore::open(&CheckpointStore::path_in(&dir.path().join("state")))
            .expect("open the checkpoint store");
        store
            .save(&[CheckpointUpdate {
                key: ShardKey {
                    stream: std::sync::Arc::from(stream.as_str()),
                    shard: std::sync::Arc::from("shardId-00000000000000000000-expired"),
                },
                table: std::sync::Arc::from(table.as_str()),
                sequence: Some(
                    dynamo_cdc::model::SequenceNumber::parse("000000000000000000001")
                        .expect("sequence"),
                ),
                finished: false,
            }])
            .expect("save");
    }
    bulk::churn(&client, &table, ITEMS, 40, 13).await;
    let third = run(config.clone()).await.expect("run");
    let text = String::from_utf8_lossy(&third.stderr);
    assert!(text.contains("are no longer in stream"), "{text}");
    let expected = common::scan(&client, &table).await;
    check("after a vanished shard", &expected);
    common::assert_same(&expected, &live(&pg, &schema, &table).await);
    bulk::drop_table(&client, &table).await;
}
