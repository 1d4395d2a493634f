//! `dynamo-cdc replay`: a change archive written by the jsonl sink from a
//! real DynamoDB Local stream, replayed into a fresh SQLite replica, equals a
//! Scan of the table; undecodable input lands in the dead-letter file.

use crate::common;

use common::engine::{command, run_until_caught_up, sqlite_sink, write_config};

#[tokio::test(flavor = "multi_thread")]
async fn a_jsonl_archive_replays_into_an_equal_replica() {
    let client = common::client().await;
    let table = common::unique_table("replay");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 80, 400, 81, 2).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let archive = dir.path().join("archive");
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &format!(
            "[[sinks]]\ntype = \"jsonl\"\ndir = \"{}\"\n",
            archive.display()
        ),
    );
    let config_clone = config.clone();
    tokio::task::spawn_blocking(move || run_until_caught_up(&config_clone))
        .await
        .expect("run");
    let mut files: Vec<String> = std::fs::read_dir(&archive)
        .expect("archive")
        .flatten()
        .map(|e| e.path().display().to_string())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let garbage = dir.path().join("garbage.jsonl");
    std::fs::write(&garbage, "{\"neither\": true}\nnot json at all\n").expect("write");
    files.push(garbage.display().to_string());

    let replay_dir = dir.path().join("replay");
    std::fs::create_dir_all(&replay_dir).expect("dir");
    let replica = replay_dir.join("replica.db");
    let replay_config = write_config(&replay_dir, &[&table], "", &sqlite_sink(&replica));
    let mut args = vec![
        "replay".to_owned(),
        "--config".to_owned(),
        replay_config.display().to_string(),
        "--table".to_owned(),
        table.clone(),
        "--keys".to_owned(),
        "pk:S,sk:N".to_owned(),
    ];
    args.extend(files);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = command(&args).output().expect("replay");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("2 undecodable (dead-lettered)"), "{stderr}");
    common::assert_same(
        &common::scan(&client, &table).await,
        &common::replica(&replica, &table),
    );
    let dead =
        std::fs::read_to_string(replay_dir.join(format!("state/dead-letters/{table}.jsonl")))
            .expect("dead letters");
    assert!(dead.contains("garbage.jsonl line 1: neither"), "{dead}");
    assert!(dead.contains("garbage.jsonl line 2: not JSON"), "{dead}");
}
