//! Against DynamoDB Local: the engine is killed with SIGKILL several times
//! while a workload runs; every restart resumes after its checkpoint (no shard
//! is read from the start again) and the replica still converges.

use crate::common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::engine::{run_until_caught_up, spawn, write_config};

/// The stored checkpoint of every shard: (shard, sequence text, finished).
fn checkpoints(state: &Path) -> Vec<(String, Option<String>, bool)> {
    let path = state.join("checkpoints.db");
    if !path.exists() {
        return Vec::new();
    }
    let conn = rusqlite::Connection::open(&path).expect("open checkpoints");
    let mut stmt = conn
        .prepare("SELECT shard_id, sequence, finished FROM checkpoints")
        .expect("query");
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .and_then(|rows| rows.collect())
        .unwrap_or_default()
}

fn jsonl_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Sequence numbers of the events in one JSON Lines file (a torn last line is ignored).
fn sequences_in(file: &Path) -> Vec<u128> {
    let reader = std::io::BufReader::new(std::fs::File::open(file).expect("open"));
    reader
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(&line).ok())
        .filter_map(|event| event["position"]["sequence"].as_str()?.parse().ok())
        .collect()
}

fn events_written(dir: &Path) -> usize {
    jsonl_files(dir).iter().map(|f| sequences_in(f).len()).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_several_points_loses_nothing_and_resumes_from_checkpoints() {
    let client = common::client().await;
    let table = common::unique_table("crash");
    common::create_table(&client, &table).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let replica_path = dir.path().join("replica.db");
    let changes = dir.path().join("changes");
    let config = write_config(
        dir.path(),
        &[&table],
        "batch_size = 20",
        &format!(
            "[[sinks]]\ntype = \"sqlite\"\npath = \"{}\"\n[sinks.batch]\nmax_records = 40\nmax_age = \"20ms\"\n\n\
             [[sinks]]\ntype = \"jsonl\"\ndir = \"{}\"\n[sinks.batch]\nmax_records = 40\nmax_age = \"20ms\"\n",
            replica_path.display(),
            changes.display()
        ),
    );
    let table_changes = changes.join(&table);

    // The workload keeps writing while the engine is killed and restarted.
    let writer = {
        let client = client.clone();
        let table = table.clone();
        tokio::spawn(async move { common::workload::run(&client, &table, 200, 2400, 21, 3).await })
    };

    let state = dir.path().join("state");
    let mut kills = 0;
    for round in 0..3 {
        let before = checkpoints(&state);
        let files_before = jsonl_files(&table_changes).len();
        let written_before = events_written(&table_changes);
        let log = dir.path().join(format!("engine-{round}.log"));
        let mut engine = spawn(&config, &log);
        let target = written_before + 150;
        let progressed = tokio::task::spawn_blocking({
            let table_changes = table_changes.clone();
            let state = state.clone();
            move || {
                common::wait_for(
                    "the engine to write 150 more events and checkpoint them",
                    Duration::from_secs(90),
                    || {
                        events_written(&table_changes) >= target
                            && checkpoints(&state).iter().any(|(_, seq, _)| seq.is_some())
                    },
                );
            }
        })
        .await;
        engine.kill().expect("SIGKILL the engine");
        engine.wait().expect("reap the engine");
        kills += 1;
        progressed.unwrap_or_else(|_| {
            panic!(
                "round {round}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });

        // This run resumed after the checkpoint the previous run left: its
        // first event follows that checkpoint, so nothing was re-read from the start.
        if let Some((_, Some(checkpoint), _)) = before.first() {
            let checkpoint: u128 = checkpoint.parse().expect("checkpoint digits");
            let new_files = &jsonl_files(&table_changes)[files_before..];
            let first = new_files
                .iter()
                .flat_map(|f| sequences_in(f))
                .next()
                .expect("the run wrote events");
            assert!(
                first > checkpoint,
                "round {round}: first event {first} is not after checkpoint {checkpoint}"
            );
        }
    }
    assert_eq!(kills, 3);

    let counts = writer.await.expect("workload");
    assert!(counts.total() > 0);
    let config_clone = config.clone();
    tokio::task::spawn_blocking(move || run_until_caught_up(&config_clone))
        .await
        .expect("final run");
    let expected = common::scan(&client, &table).await;
    common::assert_same(&expected, &common::replica(&replica_path, &table));

    // Every sequence number reached the JSON Lines sink at least once, with
    // replays only around the kill points.
    let mut all: Vec<u128> = jsonl_files(&table_changes)
        .iter()
        .flat_map(|f| sequences_in(f))
        .collect();
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert!(
        total - all.len() < 3 * 200,
        "{} duplicates for 3 kills",
        total - all.len()
    );
}
