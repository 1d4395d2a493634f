//! A full disk under the JSON Lines directory and under `state_dir` (small
//! tmpfs mounts; the tests run as root, as scripts/test.sh does): a clear
//! error that names the path, no checkpoint past data that was not
//! written, and recovery once space returns.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::engine::{run_until_caught_up, spawn, sqlite_sink, write_config};

/// A tmpfs mounted on a directory until dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a {size} tmpfs on {} failed: these tests need root (scripts/test.sh runs them as root)",
            dir.display()
        );
        Self(dir.to_owned())
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount {}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Sequence numbers of the whole lines in the JSON Lines files under `dir`.
fn written_sequences(dir: &Path) -> BTreeSet<u128> {
    common::jsonl_sequences(dir).into_iter().collect()
}

/// The stored checkpoint of every shard, as a number (none while unset).
fn stored_checkpoints(state: &Path) -> Vec<u128> {
    let Ok(conn) = rusqlite::Connection::open(state.join("checkpoints.db")) else {
        return Vec::new();
    };
    let Ok(mut statement) = conn.prepare("SELECT sequence FROM checkpoints") else {
        return Vec::new();
    };
    statement
        .query_map([], |row| row.get::<_, Option<String>>(0))
        .map(|rows| {
            rows.flatten()
                .flatten()
                .filter_map(|s| s.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_jsonl_directory_holds_the_checkpoint_and_recovers_in_place() {
    let client = common::client().await;
    let table = common::unique_table("disk_jsonl");
    common::create_table(&client, &table).await;
    common::put_items(&client, &table, "a", 150, 4_000).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let _logs = common::fleet::ReportLogs(dir.path().to_owned());
    let changes = dir.path().join("changes");
    let disk = Tmpfs::mount(&changes, "256k");
    let config = write_config(
        dir.path(),
        &[&table],
        "batch_size = 20",
        &format!(
            "[[sinks]]\ntype = \"jsonl\"\ndir = \"{}\"\n[sinks.batch]\nmax_records = 20\n\
             max_age = \"20ms\"\nmax_retry_backoff = \"500ms\"\n",
            changes.display()
        ),
    );
    let log = dir.path().join("engine.log");
    let mut engine = spawn(&config, &log);
    common::wait_for("a write to fail for space", Duration::from_secs(60), || {
        std::fs::read_to_string(&log).is_ok_and(|text| {
            text.contains("No space left on device")
                && text.contains(&changes.display().to_string())
        })
    });
    // Nothing unwritten is checkpointed: every stored position is a line
    // that is in the files.
    let written = written_sequences(&changes.join(&table));
    for checkpoint in stored_checkpoints(&dir.path().join("state")) {
        assert!(
            written.contains(&checkpoint),
            "checkpoint {checkpoint} is not in the files"
        );
    }
    assert!(
        written.len() < 150,
        "the disk never filled: {} lines",
        written.len()
    );

    disk.resize("64m");
    let in_stream: BTreeSet<u128> = common::streams::records(&table)
        .await
        .into_iter()
        .map(|(sequence, _)| sequence)
        .collect();
    let table_dir = changes.join(&table);
    common::wait_for("every change in the files", Duration::from_secs(60), || {
        in_stream.is_subset(&written_sequences(&table_dir))
    });
    assert!(
        matches!(engine.try_wait(), Ok(None)),
        "the same process recovered"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_state_dir_stops_with_a_clear_error_and_resumes_when_space_returns() {
    let client = common::client().await;
    let table = common::unique_table("disk_state");
    common::create_table(&client, &table).await;
    common::put_items(&client, &table, "a", 20, 4_000).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let _logs = common::fleet::ReportLogs(dir.path().to_owned());
    let state = dir.path().join("state");
    let _disk = Tmpfs::mount(&state, "4m");
    let replica = dir.path().join("replica.db");
    let config = write_config(dir.path(), &[&table], "", &sqlite_sink(&replica));
    let log = dir.path().join("engine.log");
    let mut engine = spawn(&config, &log);
    common::wait_for("the first checkpoint", Duration::from_secs(60), || {
        !stored_checkpoints(&state).is_empty()
    });

    // Fill what is left of the state disk; then a record that must go to
    // the dead-letter file (there) arrives, and changes after it.
    let filler = state.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    common::raw_put_item(
        &table,
        r#"{"pk":{"S":"lone"},"sk":{"N":"1"},"v":{"S":"x\ud800y"}}"#,
    )
    .await;
    common::put_items(&client, &table, "c", 5, 4_000).await;
    let status = common::wait_for_exit(&mut engine, Duration::from_secs(60));
    assert!(
        !status.success(),
        "the engine went on without its dead letter"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.lines()
            .any(|l| l.contains("dead-letters") && l.contains("No space left on device")),
        "the error does not name the dead-letter file and the full disk:\n{text}"
    );
    // Nothing at or after the record without its dead letter is checkpointed.
    let poison = common::streams::first_sequence(&table, "lone").await;
    let stored = stored_checkpoints(&state);
    assert!(
        stored.iter().all(|c| *c < poison),
        "{stored:?} passed {poison}"
    );

    // Space returns: a restart resumes from the stored checkpoints.
    std::fs::remove_file(&filler).expect("remove the filler");
    run_until_caught_up(&config);
    // (A Scan cannot read the poison item back: the SDK refuses it.)
    let keys: BTreeSet<String> = common::replica(&replica, &table)
        .into_keys()
        .map(|(pk, _)| pk)
        .collect();
    let expected: BTreeSet<String> = (0..20)
        .map(|n| format!("a{n}"))
        .chain((0..5).map(|n| format!("c{n}")))
        .collect();
    assert_eq!(keys, expected);
    let letters = common::engine::dead_letters(dir.path(), &table);
    assert_eq!(letters.len(), 1, "{letters:?}");
}
