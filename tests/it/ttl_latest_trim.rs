//! Against DynamoDB Local: TTL deletes reach the replica (and are marked),
//! `start_position = "latest"` skips history, SIGTERM stops cleanly with a
//! checkpoint, and a checkpointed shard that vanished halts or is skipped by policy.

use crate::common;

use std::process::Command;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveSpecification};
use common::engine::{
    command, records_read, run_until_caught_up, set_table_option, spawn, sqlite_sink, write_config,
};

fn put(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
    exp: Option<i64>,
) -> impl std::future::Future<Output = ()> {
    let mut request = client
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(pk.to_owned()))
        .item("sk", AttributeValue::N("1".to_owned()));
    if let Some(exp) = exp {
        request = request.item("exp", AttributeValue::N(exp.to_string()));
    }
    async move {
        request.send().await.expect("put");
    }
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn ttl_deletes_reach_the_replica_marked() {
    let client = common::client().await;
    let table = common::unique_table("ttl");
    common::create_table(&client, &table).await;
    client
        .update_time_to_live()
        .table_name(&table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("exp")
                .build()
                .expect("ttl spec"),
        )
        .send()
        .await
        .expect("enable ttl");
    for i in 0..8 {
        put(
            &client,
            &table,
            &format!("expired-{i}"),
            Some(now_seconds() - 3600),
        )
        .await;
        put(
            &client,
            &table,
            &format!("kept-{i}"),
            Some(now_seconds() + 3600),
        )
        .await;
    }
    common::wait_for_async(
        "DynamoDB Local to expire the items",
        Duration::from_secs(120),
        || async { common::scan(&client, &table).await.len() <= 8 },
    )
    .await;

    let dir = tempfile::tempdir().expect("temp dir");
    let replica = dir.path().join("replica.db");
    let changes = dir.path().join("changes");
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &format!(
            "[[sinks]]\ntype = \"sqlite\"\npath = \"{}\"\n\n[[sinks]]\ntype = \"jsonl\"\ndir = \"{}\"\n",
            replica.display(),
            changes.display()
        ),
    );
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    common::assert_same(
        &common::scan(&client, &table).await,
        &common::replica(&replica, &table),
    );
    let mut ttl_removes = 0;
    for file in std::fs::read_dir(changes.join(&table))
        .expect("dir")
        .flatten()
    {
        for line in std::fs::read_to_string(file.path()).expect("read").lines() {
            let event: serde_json::Value = serde_json::from_str(line).expect("json");
            if event["ttl_delete"] == true {
                assert_eq!(event["op"], "remove");
                assert!(event["keys"]["pk"]["S"]
                    .as_str()
                    .is_some_and(|pk| pk.starts_with("expired-")));
                ttl_removes += 1;
            }
        }
    }
    assert_eq!(ttl_removes, 8);
    assert!(
        !dir.path().join("state/dead-letters").exists(),
        "nothing was dead-lettered"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn latest_skips_history_and_sigterm_stops_cleanly() {
    let client = common::client().await;
    let table = common::unique_table("latest");
    common::create_table(&client, &table).await;
    for i in 0..10 {
        put(&client, &table, &format!("old-{i}"), None).await;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let replica = dir.path().join("replica.db");
    let config = write_config(dir.path(), &[&table], "", &sqlite_sink(&replica));
    set_table_option(&config, &table, "start_position = \"latest\"");
    let log = dir.path().join("engine.log");
    let mut engine = spawn(&config, &log);
    let log_clone = log.clone();
    tokio::task::spawn_blocking(move || {
        common::wait_for(
            "the engine to start reading",
            Duration::from_secs(60),
            || std::fs::read_to_string(&log_clone).is_ok_and(|l| l.contains("start=Latest")),
        )
    })
    .await
    .expect("wait");
    // LATEST positions the iterator at some point after the reader starts:
    // keep writing new items until some reach the replica.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut pacing = tokio::time::interval(Duration::from_millis(100));
    let mut written = 0;
    loop {
        pacing.tick().await;
        put(&client, &table, &format!("new-{written}"), None).await;
        written += 1;
        if replica.exists() && common::replica(&replica, &table).len() >= 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new item reached the replica"
        );
    }
    let status = Command::new("kill")
        .args(["-TERM", &engine.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = engine.wait().expect("wait");
    assert!(
        exit.success(),
        "SIGTERM exit {exit}: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let keys: Vec<String> = common::replica(&replica, &table)
        .into_keys()
        .map(|(pk, _)| pk)
        .collect();
    assert!(keys.iter().all(|k| k.starts_with("new-")), "{keys:?}");
    // The clean stop wrote its checkpoint: a new run reads only what arrived
    // after it (the last writes may have raced the stop), never the history.
    let before = keys.len();
    let second = tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    assert_eq!(records_read(&second) as usize, written - before);
    let keys: Vec<String> = common::replica(&replica, &table)
        .into_keys()
        .map(|(pk, _)| pk)
        .collect();
    assert_eq!(keys.len(), written);
    assert!(keys.iter().all(|k| k.starts_with("new-")), "{keys:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn vanished_checkpointed_shard_halts_or_is_skipped() {
    let client = common::client().await;
    let table = common::unique_table("trim");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 10, 20, 3, 1).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let replica = dir.path().join("replica.db");
    let config = write_config(dir.path(), &[&table], "", &sqlite_sink(&replica));
    let config_clone = config.clone();
    tokio::task::spawn_blocking(move || run_until_caught_up(&config_clone))
        .await
        .expect("run");
    // A shard the stream no longer lists, with an unfinished checkpoint: its
    // unread records expired.
    let store =
        rusqlite::Connection::open(dir.path().join("state/checkpoints.db")).expect("open store");
    store
        .execute(
            "INSERT INTO checkpoints (stream_arn, shard_id, table_name, sequence, finished, updated_at_ms)
             SELECT stream_arn, 'shardId-00000000000000000000-gone0000', table_name, '000000000000000000001', 0, 0
             FROM checkpoints LIMIT 1",
            [],
        )
        .expect("insert");
    drop(store);
    let output = command(&[
        "run",
        "--config",
        &config.display().to_string(),
        "--exit-when-caught-up",
    ])
    .output()
    .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("shard shardId-00000000000000000000-gone0000 has a checkpoint"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("dynamo-cdc snapshot --table {table}"))
            && stderr.contains("snapshot = \"when_needed\""),
        "{stderr}"
    );

    set_table_option(&config, &table, "on_trimmed = \"skip\"");
    let output = tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("its unread changes are lost (on_trimmed = skip)"),
        "{stderr}"
    );
}
