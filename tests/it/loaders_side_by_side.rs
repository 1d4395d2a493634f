//! Several `load` processes on one SQS queue, as the loader scales out:
//! three loaders converge to the joined table through SIGKILLs of single
//! loaders, and while a slow sink keeps each object loading for longer than
//! the visibility timeout, no object is loaded by two loaders (the loader
//! extends a message's visibility until its object is loaded).

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use common::engine::{command, Worker};
use common::fault_proxy::{Action, FaultProxy};
use common::staged::{expected_state, land_in_objects_of, loader_config, write_dimension, Landed};

/// ClickHouse behind a proxy that holds every insert (gzipped bodies; DDL
/// and queries are plain text) for `stall` before forwarding it: a sink
/// slow enough that an object's load outlasts a short visibility timeout.
async fn slow_clickhouse(stall: Duration) -> FaultProxy {
    FaultProxy::with_actions(&common::clickhouse::url(), move |seen| {
        if seen.body.starts_with(&[0x1f, 0x8b]) {
            Action::Stall(stall)
        } else {
            Action::Forward
        }
    })
    .await
}

/// One config per loader, each with its own state directory, writing to
/// ClickHouse at `clickhouse` one object per insert (`max_records = 1`:
/// a batch closes at its first chunk, and an object of up to 1,000 changes
/// is one chunk).
fn loader_configs(
    landed: &Landed,
    loaders: usize,
    database: &str,
    dimension: &Path,
    visibility: &str,
    clickhouse: &str,
) -> Vec<PathBuf> {
    (0..loaders)
        .map(|index| {
            let dir = landed.dir.path().join(format!("loader-{index}"));
            std::fs::create_dir_all(&dir).expect("loader dir");
            let config = loader_config(
                &dir,
                &landed.queue_url,
                &landed.table,
                database,
                &dimension.display().to_string(),
                visibility,
            );
            let text = std::fs::read_to_string(&config)
                .expect("config")
                .replace(&common::clickhouse::url(), clickhouse);
            std::fs::write(
                &config,
                format!("{text}\n[sinks.batch]\nmax_records = 1\nmax_age = \"10ms\"\n"),
            )
            .expect("config");
            config
        })
        .collect()
}

/// A `load --exit-when-idle` process logging JSON lines to `log`.
fn start_loader(config: &Path, log: &Path) -> Worker {
    Worker(
        command(&[
            "--log-format",
            "json",
            "load",
            "--config",
            &config.display().to_string(),
            "--exit-when-idle",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("start a loader"),
    )
}

/// One loader log line about an object.
struct Event {
    /// `loading an object` or `object loaded, message deleted`.
    message: String,
    key: String,
    at: SystemTime,
}

const LOADING: &str = "loading an object";
const LOADED: &str = "object loaded, message deleted";

/// The object events of a loader log (a line torn by a kill is skipped).
fn events(log: &Path) -> Vec<Event> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).ok()?;
            let message = line["message"].as_str()?;
            if message != LOADING && message != LOADED {
                return None;
            }
            Some(Event {
                message: message.to_owned(),
                key: line["key"].as_str()?.to_owned(),
                at: humantime::parse_rfc3339(line["timestamp"].as_str()?).ok()?,
            })
        })
        .collect()
}

fn count(events: &[Event], message: &str) -> usize {
    events.iter().filter(|e| e.message == message).count()
}

/// Objects loaded (message deleted) across `logs`, by key.
fn loaded_keys(logs: &[PathBuf]) -> BTreeMap<String, usize> {
    let mut keys = BTreeMap::new();
    for log in logs {
        for event in events(log).into_iter().filter(|e| e.message == LOADED) {
            *keys.entry(event.key).or_insert(0) += 1;
        }
    }
    keys
}

/// Objects whose load began in `logs` without a matching "loaded" line.
fn unfinished_keys(logs: &[PathBuf]) -> Vec<String> {
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    for log in logs {
        for event in events(log) {
            let held = open.entry(event.key).or_insert(0);
            if event.message == LOADING {
                *held += 1;
            } else {
                *held = held.saturating_sub(1);
            }
        }
    }
    open.into_iter()
        .filter(|(_, held)| *held > 0)
        .map(|(key, _)| key)
        .collect()
}

/// Waits for every loader to exit by itself, calling `check` (which panics
/// on a broken promise) at each look, and checks that each loader succeeded.
async fn wait_for_exits(loaders: &mut [Worker], logs: &[PathBuf], check: impl Fn()) {
    let mut statuses = vec![None; loaders.len()];
    common::wait_for_async("every loader to exit", Duration::from_secs(120), || {
        check();
        for (loader, status) in loaders.iter_mut().zip(statuses.iter_mut()) {
            if status.is_none() {
                *status = loader.try_wait().expect("loader status");
            }
        }
        let done = statuses.iter().all(Option::is_some);
        async move { done }
    })
    .await;
    for ((index, status), log) in statuses.iter().enumerate().zip(logs) {
        assert!(
            status.is_some_and(|s| s.success()),
            "loader {index} ended with {status:?}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

/// The loaders (indexes into `logs`) that began loading each object.
fn loaders_by_object(logs: &[PathBuf]) -> BTreeMap<String, Vec<usize>> {
    let mut loads: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, log) in logs.iter().enumerate() {
        for event in events(log).into_iter().filter(|e| e.message == LOADING) {
            loads.entry(event.key).or_default().push(index);
        }
    }
    loads
}

/// Panics when some object's load began more than once.
fn assert_each_loaded_once(logs: &[PathBuf]) {
    let loads = loaders_by_object(logs);
    let twice: Vec<_> = loads.iter().filter(|(_, by)| by.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "objects loaded more than once (by loaders): {twice:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn three_loaders_converge_through_sigkills_of_single_loaders() {
    let landed = land_in_objects_of("side_kill", 1000, 71, "", 25).await;
    let objects = common::moto::list_keys(&landed.bucket, &format!("{}/", landed.table))
        .await
        .len();
    assert!(objects >= 30, "{objects} objects");
    let dimension_path = landed.dir.path().join("customers.parquet");
    let dimension = write_dimension(&dimension_path);
    let database = common::clickhouse::unique_database("side_kill");
    // 200 ms per object: the load lasts long enough to kill loaders mid-way.
    let proxy = slow_clickhouse(Duration::from_millis(200)).await;
    let configs = loader_configs(&landed, 3, &database, &dimension_path, "3s", &proxy.url);
    let log_of = |index: usize, run: usize| {
        landed
            .dir
            .path()
            .join(format!("loader-{index}/run-{run}.log"))
    };
    let mut logs: Vec<PathBuf> = Vec::new();
    let mut loaders: Vec<Worker> = Vec::new();
    let mut runs = [0; 3];
    for (index, config) in configs.iter().enumerate() {
        logs.push(log_of(index, 0));
        loaders.push(start_loader(config, &logs[index]));
    }
    let mut every_log = logs.clone();

    // Three times, once a sixth, two sixths, half of the objects are
    // loaded, kill a loader that holds an object it has not finished (its
    // message not deleted), one not killed before if one holds work (a
    // loader takes up to 10 messages at a time, so a given loader may
    // hold none), and restart it.
    let mut held_at_kill = Vec::new();
    let mut victims: Vec<usize> = Vec::new();
    for kill in 0..3 {
        let chosen = std::sync::Mutex::new(None);
        let (chosen_ref, logs_ref, all_logs, killed) = (&chosen, &logs, &every_log, &victims);
        common::wait_for_async(
            &format!(
                "a loader to hold an unfinished object after {}/6 of the loads",
                kill + 1
            ),
            Duration::from_secs(60),
            || async move {
                if loaded_keys(all_logs).len() * 6 < objects * (kill + 1) {
                    return false;
                }
                let holder = (0..3)
                    .filter(|i| !killed.contains(i))
                    .chain((0..3).filter(|i| killed.contains(i)))
                    .find(|&i| {
                        let events = events(&logs_ref[i]);
                        count(&events, LOADING) > count(&events, LOADED)
                    });
                *chosen_ref.lock().expect("victim") = holder;
                holder.is_some()
            },
        )
        .await;
        let victim = chosen
            .into_inner()
            .expect("victim")
            .expect("a loader holds work");
        victims.push(victim);
        let victim_log = &logs[victim];
        loaders[victim].kill().expect("SIGKILL");
        loaders[victim].wait().expect("reap");
        let events = events(victim_log);
        held_at_kill.push(count(&events, LOADING) - count(&events, LOADED));
        runs[victim] += 1;
        logs[victim] = log_of(victim, runs[victim]);
        every_log.push(logs[victim].clone());
        loaders[victim] = start_loader(&configs[victim], &logs[victim]);
    }
    wait_for_exits(&mut loaders, &logs, || {}).await;

    // Every object was loaded; the ones killed loaders held were loaded
    // again by some loader once their visibility ran out. A loader logs
    // "loaded" after deleting the message, so a kill between the two
    // leaves an object loaded and deleted whose last line is "loading" in
    // the killed run's log: such an object counts as finished only there
    // (the queue is empty and ClickHouse converged, both checked below).
    let mut finished = loaded_keys(&every_log);
    let killed_logs: Vec<PathBuf> = every_log
        .iter()
        .filter(|log| !logs.contains(log))
        .cloned()
        .collect();
    let unlogged = unfinished_keys(&killed_logs)
        .into_iter()
        .filter(|key| !finished.contains_key(key))
        .collect::<Vec<_>>();
    assert!(
        unlogged.len() <= 3,
        "at most one object per kill may lose its line: {unlogged:?}"
    );
    finished.extend(unlogged.into_iter().map(|key| (key, 1)));
    assert_eq!(finished.len(), objects, "objects loaded: {finished:?}");
    let started: usize = every_log.iter().map(|l| count(&events(l), LOADING)).sum();
    assert!(
        started > objects,
        "the killed loaders held {held_at_kill:?} unfinished objects, yet only {started} loads \
         began for {objects} objects"
    );
    let expected = expected_state(
        common::scan(&landed.client, &landed.table).await,
        &dimension,
    );
    common::assert_same(
        &expected,
        &common::clickhouse::state(&database, &landed.table).await,
    );
    eprintln!(
        "{objects} objects, loaders {victims:?} killed in turn holding {held_at_kill:?} \
         unfinished objects: {started} loads began, {} items converged",
        expected.len()
    );
    assert_eq!(
        common::moto::drain(&landed.sqs, &landed.queue_url)
            .await
            .len(),
        0,
        "every message was deleted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_is_loaded_by_one_loader_at_a_time_while_its_load_outlasts_the_visibility() {
    let landed = land_in_objects_of("side_once", 300, 72, "", 50).await;
    let objects = common::moto::list_keys(&landed.bucket, &format!("{}/", landed.table))
        .await
        .len();
    assert!(objects >= 4, "{objects} objects");
    let dimension_path = landed.dir.path().join("customers.parquet");
    let dimension = write_dimension(&dimension_path);
    let database = common::clickhouse::unique_database("side_once");
    // Each insert takes 2.5 s, a visibility timeout of 2 s: every message
    // would be visible again while its object loads, were its visibility
    // not extended.
    let visibility = Duration::from_secs(2);
    let proxy = slow_clickhouse(Duration::from_millis(2500)).await;
    let configs = loader_configs(&landed, 3, &database, &dimension_path, "2s", &proxy.url);
    let logs: Vec<PathBuf> = (0..configs.len())
        .map(|index| landed.dir.path().join(format!("loader-{index}.log")))
        .collect();
    let mut loaders: Vec<Worker> = configs
        .iter()
        .zip(&logs)
        .map(|(config, log)| start_loader(config, log))
        .collect();
    // Whichever loader receives the messages, the others keep polling the
    // queue until it is empty (`--exit-when-idle` waits for the in-flight
    // messages too): a message whose visibility lapsed would reach one of
    // them, or its own loader again. A second load fails the test at once.
    wait_for_exits(&mut loaders, &logs, || assert_each_loaded_once(&logs)).await;
    assert_each_loaded_once(&logs);
    let loads = loaders_by_object(&logs);

    // How long each load lasted, from its start to its message's deletion.
    let mut began: BTreeMap<String, SystemTime> = BTreeMap::new();
    let mut lasted: Vec<Duration> = Vec::new();
    for log in &logs {
        for event in events(log) {
            if event.message == LOADING {
                began.insert(event.key, event.at);
            } else if let Some(start) = began.get(&event.key) {
                lasted.push(event.at.duration_since(*start).unwrap_or_default());
            }
        }
    }
    assert_eq!(loads.len(), objects, "objects loaded: {loads:?}");
    assert_eq!(lasted.len(), objects);
    let shortest = lasted.iter().min().copied().unwrap_or_default();
    let longest = lasted.iter().max().copied().unwrap_or_default();
    assert!(
        shortest > visibility && longest > visibility * 3,
        "loads lasted {shortest:?} to {longest:?}, the visibility timeout is {visibility:?}"
    );
    let mut per_loader = vec![0; logs.len()];
    for by in loads.values() {
        per_loader[by[0]] += 1;
    }
    eprintln!(
        "{objects} objects, each loaded once (by loader 0, 1, 2: {per_loader:?}); \
         loads lasted {shortest:?} to {longest:?}"
    );
    let expected = expected_state(
        common::scan(&landed.client, &landed.table).await,
        &dimension,
    );
    common::assert_same(
        &expected,
        &common::clickhouse::state(&database, &landed.table).await,
    );
}
