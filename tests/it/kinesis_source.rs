//! The Kinesis source end to end: DynamoDB Local → forwarder (the Kinesis
//! streaming destination's record format, with duplicates) → kinesalite →
//! engine → SQLite, PostgreSQL and an OpenSearch index, with splits, merges and SIGKILLs during
//! the run; one stream carrying several tables; start positions; malformed
//! records.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_kinesis::primitives::Blob;
use common::engine::{run_until_caught_up, spawn};
use common::es_index;
use common::fault_proxy::{Fault, FaultProxy};
use common::kinesis::pipeline::{
    assert_parents_first, checkpointed, checkpoints, forward_all, kinesis_config, postgres,
    postgres_url, setup, IDLE,
};
use common::kinesis::{self, Forwarder, ForwarderOptions};

#[tokio::test(flavor = "multi_thread")]
async fn converges_through_split_merge_duplicates_and_kills() {
    let (client, kin, table, stream) = setup("kin_conv", 4).await;
    let forwarder = Forwarder::start(
        &common::endpoint(),
        &table,
        &stream,
        ForwarderOptions {
            duplicate_every: Some(10),
            ..ForwarderOptions::default()
        },
    );
    let workload = tokio::spawn({
        let client = client.clone();
        let table = table.clone();
        async move { common::workload::run(&client, &table, 150, 1500, 31, 3).await }
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let schema = common::unique_table("kin");
    let replica = dir.path().join("replica.db");
    // Also into an index: Kinesis time versions as external versions.
    let sinks = format!(
        "{}\n[[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"\ncreate_table = true\n\
         [sinks.batch]\nmax_records = 200\nmax_age = \"20ms\"\n{}",
        common::engine::sqlite_sink(&replica),
        postgres_url(),
        es_index::es_sink(dir.path(), &common::opensearch::url(), es_index::UNMAPPED, "")
    );
    let config = kinesis_config(dir.path(), &[&table], &stream, "", &sinks);
    let state = dir.path().join("state");
    let reshards: [&str; 3] = ["split", "merge", "none"];
    for (round, reshard) in reshards.iter().enumerate() {
        let log = dir.path().join(format!("engine-{round}.log"));
        let mut engine = spawn(&config, &log);
        let before = forwarder.forwarded();
        let state_now = state.clone();
        let waited = tokio::task::spawn_blocking(move || {
            common::wait_for(
                "the engine to checkpoint and the forwarder to move on",
                Duration::from_secs(90),
                || checkpointed(&state_now) > round,
            );
        })
        .await;
        common::wait_for_async("more records forwarded", IDLE, || {
            let now = forwarder.forwarded();
            async move { now > before + 100 }
        })
        .await;
        match *reshard {
            "split" => kinesis::split_shard(&kin, &stream, "shardId-000000000000").await,
            "merge" => {
                kinesis::merge_shards(
                    &kin,
                    &stream,
                    "shardId-000000000002",
                    "shardId-000000000003",
                )
                .await
            }
            _ => {}
        }
        engine.kill().expect("SIGKILL the engine");
        engine.wait().expect("reap the engine");
        waited.unwrap_or_else(|_| {
            panic!(
                "round {round}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    }
    let counts = workload.await.expect("workload");
    assert!(counts.deletes > 20 && counts.updates > 100, "{counts:?}");
    forwarder.wait_idle(IDLE).await;
    let duplicates = forwarder.duplicates();
    let forwarded = forwarder.forwarded();
    forwarder.stop().await;
    assert!(
        duplicates * 20 >= forwarded,
        "{duplicates} duplicates of {forwarded}"
    );
    let lineage = kinesis::list_shards(&kin, &stream).await;
    assert!(
        lineage.iter().any(|(_, _, adjacent, _)| adjacent.is_some()),
        "{lineage:?}"
    );

    let output = tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("final run");
    let mut logs: String = (0..reshards.len())
        .map(|round| {
            std::fs::read_to_string(dir.path().join(format!("engine-{round}.log")))
                .unwrap_or_default()
        })
        .collect();
    logs.push_str(&String::from_utf8_lossy(&output.stderr));
    assert_parents_first(&logs, &lineage);
    let expected = common::scan(&client, &table).await;
    assert!(!expected.is_empty());
    common::assert_same(&expected, &common::replica(&replica, &table));
    let pg = postgres().await;
    common::assert_same(
        &expected,
        &common::postgres::live(&pg, &schema, &table).await,
    );
    es_index::assert_index_equals(&es_index::index_of(&table), &expected).await;
    // Every shard, the closed parents included, was read to its end.
    let finished = checkpoints(&dir.path().join("state"));
    assert!(
        finished.len() >= 7,
        "{finished:?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_stream_carries_two_tables_and_others_are_dead_lettered() {
    let client = common::client().await;
    let kin = kinesis::client();
    let orders = common::unique_table("kin_orders");
    let users = common::unique_table("kin_users");
    let stranger = common::unique_table("kin_stranger");
    let stream = kinesis::unique_stream("kin-two");
    for table in [&orders, &users, &stranger] {
        common::create_table(&client, table).await;
    }
    kinesis::create_stream(&kin, &stream, 2).await;
    common::workload::run(&client, &orders, 60, 300, 41, 2).await;
    common::workload::run(&client, &users, 30, 150, 42, 2).await;
    common::workload::run(&client, &stranger, 10, 20, 43, 1).await;
    let mut stranger_records = 0;
    for table in [&orders, &users, &stranger] {
        let forwarded = forward_all(table, &stream).await;
        if table == &stranger {
            stranger_records = forwarded;
        }
    }

    // Default: the other table's records are counted and skipped.
    let skip_dir = tempfile::tempdir().expect("temp dir");
    let skip_config = kinesis_config(
        skip_dir.path(),
        &[&orders, &users],
        &stream,
        "",
        &common::engine::sqlite_sink(&skip_dir.path().join("replica.db")),
    );
    let skipped = tokio::task::spawn_blocking(move || run_until_caught_up(&skip_config))
        .await
        .expect("run");
    let summary = String::from_utf8_lossy(&skipped.stderr);
    assert!(
        summary.contains(&format!("other_table_records={stranger_records}")),
        "{stranger_records} records of {stranger} expected in the summary: {summary}"
    );
    assert!(!skip_dir
        .path()
        .join("state")
        .join("dead-letters")
        .join(format!("{stranger}.jsonl"))
        .exists());

    let dir = tempfile::tempdir().expect("temp dir");
    let replica = dir.path().join("replica.db");
    let config = kinesis_config(
        dir.path(),
        &[&orders, &users],
        &stream,
        "",
        &common::engine::sqlite_sink(&replica),
    );
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace(
            "[source]\n",
            "[source]\nkinesis_other_tables = \"dead_letter\"\n",
        ),
    )
    .expect("config");
    let output = tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    for table in [&orders, &users] {
        common::assert_same(
            &common::scan(&client, table).await,
            &common::replica(&replica, table),
        );
    }
    let letters = std::fs::read_to_string(
        dir.path()
            .join("state")
            .join("dead-letters")
            .join(format!("{stranger}.jsonl")),
    )
    .unwrap_or_else(|e| {
        panic!(
            "no dead letters for {stranger}: {e}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(letters.lines().count() >= 10, "{letters}");
    assert!(
        letters.contains("is not configured on this stream"),
        "{letters}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_records_are_dead_lettered_and_the_shard_moves_on() {
    let (client, kin, table, stream) = setup("kin_bad", 1).await;
    common::workload::run(&client, &table, 20, 40, 51, 1).await;
    forward_all(&table, &stream).await;
    let bad = [
        "not json at all".to_owned(),
        format!(
            r#"{{"tableName":"{table}","eventID":"x1","eventName":"INSERT","dynamodb":{{"ApproximateCreationDateTime":1,"ApproximateCreationDateTimePrecision":"MICROSECOND","Keys":{{"pk":{{"S":"p"}},"sk":{{"N":"not-a-number"}}}}}}}}"#
        ),
    ];
    for data in &bad {
        kin.put_record()
            .stream_name(&stream)
            .partition_key("bad")
            .data(Blob::new(data.as_bytes()))
            .send()
            .await
            .expect("put a malformed record");
    }
    common::workload::run(&client, &table, 20, 40, 52, 1).await;
    forward_all(&table, &stream).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let replica = dir.path().join("replica.db");
    let config = kinesis_config(
        dir.path(),
        &[&table],
        &stream,
        "",
        &common::engine::sqlite_sink(&replica),
    );
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    common::assert_same(
        &common::scan(&client, &table).await,
        &common::replica(&replica, &table),
    );
    let letters = std::fs::read_to_string(
        dir.path()
            .join("state")
            .join("dead-letters")
            .join(format!("{table}.jsonl")),
    )
    .expect("dead letters");
    assert_eq!(letters.lines().count(), 2, "{letters}");
    assert!(letters.contains("dataBase64"), "{letters}");
    assert!(letters.contains("not-a-number"), "{letters}");
}

#[tokio::test(flavor = "multi_thread")]
async fn latest_and_at_timestamp_starts_skip_what_came_before() {
    let (client, _kin, table, stream) = setup("kin_start", 2).await;
    let forwarder = Forwarder::start(
        &common::endpoint(),
        &table,
        &stream,
        ForwarderOptions::default(),
    );
    common::workload::run(&client, &table, 30, 30, 61, 1).await;
    forwarder.wait_idle(IDLE).await;
    let early = common::scan(&client, &table).await;
    // kinesalite stamps arrivals in whole seconds: start a little later.
    let cut = SystemTime::now() + Duration::from_secs(2);
    common::wait_for("the clock to pass the cut", Duration::from_secs(10), || {
        SystemTime::now() > cut + Duration::from_secs(1)
    });
    let stamp = humantime::format_rfc3339_millis(cut).to_string();

    // latest: the engine starts at the end; only later changes arrive.
    let dir = tempfile::tempdir().expect("temp dir");
    let latest_replica = dir.path().join("latest.db");
    std::fs::create_dir_all(dir.path().join("latest")).expect("dir");
    std::fs::create_dir_all(dir.path().join("at")).expect("dir");
    let latest = kinesis_config(
        &dir.path().join("latest"),
        &[&table],
        &stream,
        "start_position = \"latest\"\n",
        &common::engine::sqlite_sink(&latest_replica),
    );
    let log = dir.path().join("latest.log");
    let mut engine = spawn(&latest, &log);
    // The engine opens its LATEST iterators some time after it starts:
    // write one new item at a time until one arrives (the ones written
    // before the iterators opened are, rightly, never read), then five more
    // that must all arrive.
    let mut rng = fastrand::Rng::with_seed(62);
    let mut later = Vec::new();
    let mut arrived = false;
    for index in 0..60 {
        later.push(put_late_item(&client, &table, &mut rng, index).await);
        forwarder.wait_idle(IDLE).await;
        if !common::replica(&latest_replica, &table).is_empty() {
            arrived = true;
            break;
        }
    }
    assert!(
        arrived,
        "no change made after the start reached the replica: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let mut must_arrive = Vec::new();
    for index in 100..105 {
        must_arrive.push(put_late_item(&client, &table, &mut rng, index).await);
    }
    later.extend(must_arrive.iter().cloned());
    forwarder.wait_idle(IDLE).await;
    let replica_path = latest_replica.clone();
    let table_name = table.clone();
    let expected = must_arrive.clone();
    tokio::task::spawn_blocking(move || {
        common::wait_for("the later items in the replica", IDLE, || {
            let seen = common::replica(&replica_path, &table_name);
            expected.iter().all(|key| seen.contains_key(key))
        })
    })
    .await
    .expect("wait");
    engine.kill().expect("stop the engine");
    engine.wait().expect("reap");
    let seen = common::replica(&latest_replica, &table);
    assert!(
        seen.keys().all(|key| later.contains(key)),
        "changes from before the start were read: {seen:?}"
    );
    forwarder.stop().await;

    // at_timestamp: only what arrived after the cut.
    let at_replica = dir.path().join("at.db");
    let at = kinesis_config(
        &dir.path().join("at"),
        &[&table],
        &stream,
        &format!("start_position = \"at_timestamp\"\nstart_timestamp = \"{stamp}\"\n"),
        &common::engine::sqlite_sink(&at_replica),
    );
    tokio::task::spawn_blocking(move || run_until_caught_up(&at))
        .await
        .expect("run");
    let seen = common::replica(&at_replica, &table);
    // Every item written after the cut (also those written before the
    // LATEST run opened its iterators), and none from before it.
    assert!(later.iter().all(|key| seen.contains_key(key)), "{seen:?}");
    assert!(early.keys().all(|key| !seen.contains_key(key)), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_iterators_are_renewed_after_the_last_record_read() {
    let (client, _kin, table, stream) = setup("kin_expire", 2).await;
    common::workload::run(&client, &table, 40, 200, 71, 2).await;
    forward_all(&table, &stream).await;
    // kinesalite expires iterators after 300 s: a proxy in front of it
    // answers every third GetRecords with ExpiredIteratorException instead.
    let proxy = FaultProxy::start(&kinesis::endpoint(), |seen| {
        (seen.target.ends_with(".GetRecords") && seen.index % 3 == 2).then(|| Fault {
            status: 400,
            error_type: "ExpiredIteratorException".into(),
        })
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let replica = dir.path().join("replica.db");
    let config = kinesis_config(
        dir.path(),
        &[&table],
        &stream,
        "",
        &common::engine::sqlite_sink(&replica),
    );
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text
        .replace(&kinesis::endpoint(), &proxy.url)
        .replace("[source]\n", "[source]\nkinesis_batch_size = 25\n");
    std::fs::write(&config, text).expect("config");
    let output = tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    assert!(
        proxy.injected() >= 3,
        "{} faults injected",
        proxy.injected()
    );
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("shard iterator expired"), "{log}");
    common::assert_same(
        &common::scan(&client, &table).await,
        &common::replica(&replica, &table),
    );
    // Renewal resumes after the last record read: nothing is read twice.
    let forwarded_records: u64 = kinesis::read_all(&kinesis::client(), &stream)
        .await
        .iter()
        .map(|(_, records)| records.len() as u64)
        .sum();
    assert_eq!(common::engine::records_read(&output), forwarded_records);
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_then_kinesis_stream_converges_with_a_concurrent_writer() {
    let (client, _kin, table, stream) = setup("kin_snap", 2).await;
    common::workload::run(&client, &table, 300, 300, 81, 3).await;
    forward_all(&table, &stream).await;
    let before_snapshot = kinesis::read_all(&kinesis::client(), &stream)
        .await
        .iter()
        .map(|(_, records)| records.len() as u64)
        .sum::<u64>();
    let forwarder = Forwarder::start(
        &common::endpoint(),
        &table,
        &stream,
        ForwarderOptions {
            duplicate_every: Some(10),
            ..ForwarderOptions::default()
        },
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let replica = dir.path().join("replica.db");
    let schema = common::unique_table("kin_snap");
    let sinks = format!(
        "{}\n[[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"\ncreate_table = true\n",
        common::engine::sqlite_sink(&replica),
        postgres_url()
    );
    let config = kinesis_config(
        dir.path(),
        &[&table],
        &stream,
        "snapshot = \"initial\"\nsnapshot_segments = 2\nsnapshot_page_size = 10\nsnapshot_max_items_per_second = 15\n",
        &sinks,
    );
    // The writer changes, deletes and adds items from before the engine
    // starts until its snapshot run ends, so that its changes reach the
    // Kinesis stream through the forwarder during the Scan (pages of 10
    // items at 15 items/s: about 10 s for the table's ~170 items) however
    // slowly the engine starts or the forwarder forwards on a busy machine.
    let first_done = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let client = client.clone();
        let table = table.clone();
        let first_done = Arc::clone(&first_done);
        async move {
            let mut round = 0;
            while !first_done.load(Ordering::Relaxed) {
                common::workload::run(&client, &table, 360, 40, 82 + round, 2).await;
                round += 1;
            }
        }
    });
    let first_config = config.clone();
    let first = tokio::task::spawn_blocking(move || run_until_caught_up(&first_config))
        .await
        .expect("snapshot run");
    first_done.store(true, Ordering::Relaxed);
    let first_log = String::from_utf8_lossy(&first.stderr).to_string();
    assert!(first_log.contains("snapshot finished"), "{first_log}");
    writer.await.expect("writer");
    forwarder.wait_idle(IDLE).await;
    forwarder.stop().await;
    let second = tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("catch-up run");

    let expected = common::scan(&client, &table).await;
    common::assert_same(&expected, &common::replica(&replica, &table));
    let pg = postgres().await;
    common::assert_same(
        &expected,
        &common::postgres::live(&pg, &schema, &table).await,
    );
    // The stream was read from the positions recorded at the snapshot.
    let read = common::engine::records_read(&first) + common::engine::records_read(&second);
    let total: u64 = kinesis::read_all(&kinesis::client(), &stream)
        .await
        .iter()
        .map(|(_, records)| records.len() as u64)
        .sum();
    // A shard that stayed quiet during the Scan keeps the trim horizon (also
    // gap-free), so only the total is bounded: not everything was re-read.
    assert!(
        read < total,
        "read {read} of {total} ({before_snapshot} before the snapshot); snapshot run: {}",
        first_log
            .lines()
            .filter(|l| l.contains("snapshot") || l.contains("position") || l.contains("WARN"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Puts a new item `late-INDEX` (sort key 1) into `table`; returns its key.
async fn put_late_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    rng: &mut fastrand::Rng,
    index: usize,
) -> (String, String) {
    let (pk, sk) = (format!("late-{index}"), "1".to_owned());
    let item = common::workload::random_item(rng, &pk, &sk);
    client
        .put_item()
        .table_name(table)
        .set_item(Some(common::values::to_sdk_item(&item)))
        .send()
        .await
        .expect("put");
    (pk, sk)
}
