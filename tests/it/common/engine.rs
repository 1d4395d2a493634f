//! Running the `dynamo-cdc` binary from tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The engine binary: `DYNAMO_CDC_BIN` when set (scripts/test.sh sets it
/// to the binary it built; a copy keeps a run independent of later builds
/// in a shared target directory), else the one cargo built for these tests.
pub fn binary() -> PathBuf {
    std::env::var_os("DYNAMO_CDC_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_dynamo-cdc")),
        PathBuf::from,
    )
}

/// Writes a pipeline config for `tables` into `dir` with extra `[source]`
/// lines and the given sink sections (TOML), and returns its path.
pub fn write_config(dir: &Path, tables: &[&str], source: &str, extra: &str) -> PathBuf {
    let mut text = format!(
        "state_dir = \"{state}\"\n\n[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\n\n\
         [source]\nidle_poll_min = \"50ms\"\nidle_poll_max = \"200ms\"\n{source}\n",
        state = dir.join("state").display(),
        endpoint = super::endpoint(),
    );
    for table in tables {
        text.push_str(&format!("\n[[tables]]\nname = \"{table}\"\n"));
    }
    text.push('\n');
    text.push_str(extra);
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The command with local credentials and no inherited AWS profile.
pub fn command(args: &[&str]) -> Command {
    command_in(super::SHARED_DATABASE, args)
}

/// [`command`] using DynamoDB Local's database `database` (an access key;
/// see `common::own_database`).
pub fn command_in(database: &str, args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env("AWS_ACCESS_KEY_ID", database)
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env_remove("AWS_PROFILE")
        .env("RUST_LOG", "info");
    command
}

/// Runs the engine to completion (`--exit-when-caught-up`) and checks it succeeded.
pub fn run_until_caught_up(config: &Path) -> Output {
    run_until_caught_up_in(super::SHARED_DATABASE, config)
}

/// [`run_until_caught_up`] using DynamoDB Local's database `database`.
pub fn run_until_caught_up_in(database: &str, config: &Path) -> Output {
    let output = command_in(
        database,
        &[
            "run",
            "--config",
            &config.display().to_string(),
            "--exit-when-caught-up",
        ],
    )
    .output()
    .expect("run the engine");
    assert!(
        output.status.success(),
        "engine failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The dead letters of `table` in the state directory under `dir`, one JSON
/// object per letter. Panics when there is no dead-letter file. A letter
/// keeps its record exactly, lone surrogate escapes (the tests' poison)
/// and all; serde_json refuses those, so they are read as U+FFFD.
pub fn dead_letters(dir: &Path, table: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join(format!("state/dead-letters/{table}.jsonl")))
        .expect("dead letters")
        .replace("\\uD800", "\\uFFFD")
        .replace("\\ud800", "\\uFFFD")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a dead letter"))
        .collect()
}

/// Starts the engine in the background (logs to `log`); it is killed when
/// the returned handle is dropped.
pub fn spawn(config: &Path, log: &Path) -> Worker {
    let log = std::fs::File::create(log).expect("log file");
    Worker(
        command(&["run", "--config", &config.display().to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the engine"),
    )
}

/// A worker process, killed when dropped (a failed test leaves none behind).
pub struct Worker(pub Child);

impl std::ops::Deref for Worker {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Worker {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The number of records a run read, from its final log line.
pub fn records_read(output: &Output) -> u64 {
    let text = String::from_utf8_lossy(&output.stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("stopped:"))
        .unwrap_or_else(|| panic!("no summary line in:\n{text}"));
    let after = line.split("stopped: ").nth(1).expect("summary");
    after
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the record count in {line:?}"))
}

/// Adds `option` (a TOML line) to the `[[tables]]` entry of `table` in a config file.
pub fn set_table_option(config: &Path, table: &str, option: &str) {
    let text = std::fs::read_to_string(config).expect("read config");
    let entry = format!("name = \"{table}\"\n");
    assert!(text.contains(&entry), "no table {table} in the config");
    std::fs::write(config, text.replace(&entry, &format!("{entry}{option}\n")))
        .expect("write config");
}

/// A `[[sinks]]` section for a SQLite replica at `path`.
pub fn sqlite_sink(path: &Path) -> String {
    format!(
        "[[sinks]]\ntype = \"sqlite\"\npath = \"{}\"\n",
        path.display()
    )
}
