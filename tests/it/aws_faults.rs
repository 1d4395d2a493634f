//! Faults DynamoDB Local cannot produce, injected by a proxy between the
//! engine and it (`common::fault_proxy`): throttling, server errors,
//! connection resets, stalls past the request timeout, expired iterators,
//! a trimmed stream and failing lease-table calls. Under each the engine
//! loses nothing, follows `on_trimmed`, and backs off instead of looping.

use crate::common;

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::engine::{command, run_until_caught_up, spawn, sqlite_sink, write_config};
use common::fault_proxy::{Action, Fault, FaultProxy, Seen};
use common::fleet::ReportLogs;

/// The faults of the mixed test, taken in turn.
fn nth_fault(n: u64) -> Action {
    match n % 7 {
        0 => Action::Fail(Fault::new(400, "LimitExceededException")),
        1 => Action::Fail(Fault::new(400, "ProvisionedThroughputExceededException")),
        2 => Action::Fail(Fault::new(500, "InternalServerError")),
        3 => Action::Fail(Fault::new(503, "ServiceUnavailable")),
        4 => Action::Fail(Fault::new(502, "")),
        5 => Action::Fail(Fault::new(400, "ThrottlingException")),
        _ => Action::Reset,
    }
}

/// A stable pseudo-random roll in 0..100 for one request.
fn roll(seen: &Seen<'_>) -> u64 {
    let salt: u64 = seen.target.bytes().map(u64::from).sum();
    (seen
        .index
        .wrapping_mul(2_654_435_761)
        .wrapping_add(salt * 40_503))
        % 100
}

/// A proxy to DynamoDB Local failing, of the calls whose operation contains
/// `scope`, the first 7 of each operation (each fault of [`nth_fault`]
/// once) and then `percent` (changeable) of them.
async fn mixed_fault_proxy(percent: Arc<AtomicU32>, scope: &'static str) -> FaultProxy {
    FaultProxy::with_actions(&common::endpoint(), move |seen| {
        let in_scope = seen.target.contains(scope);
        let unlucky = seen.index < 7 || roll(seen) < u64::from(percent.load(Ordering::Relaxed));
        if in_scope && unlucky {
            nth_fault(seen.index)
        } else {
            Action::Forward
        }
    })
    .await
}

/// A config whose AWS calls all go through `proxy`.
fn through(proxy: &FaultProxy, config: &Path) {
    let text = std::fs::read_to_string(config).expect("config");
    std::fs::write(config, text.replace(&common::endpoint(), &proxy.url)).expect("config");
}

/// Waits until the SQLite replica at `replica` equals a Scan of `table`.
async fn wait_converged(client: &aws_sdk_dynamodb::Client, table: &str, replica: &Path) {
    let expected = common::scan(client, table).await;
    common::wait_for(
        "the replica to equal the table",
        Duration::from_secs(180),
        || common::replica_if_present(replica, table).as_ref() == Some(&expected),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_server_errors_and_resets_lose_nothing_and_back_off() {
    let client = common::client().await;
    let table = common::unique_table("faults_mix");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 80, 600, 31, 4).await;

    let percent = Arc::new(AtomicU32::new(30));
    let proxy = mixed_fault_proxy(Arc::clone(&percent), "").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let _logs = ReportLogs(dir.path().to_owned());
    let replica = dir.path().join("replica.db");
    let config = write_config(
        dir.path(),
        &[&table],
        "max_retry_backoff = \"1s\"\nrequest_timeout = \"3s\"\ndiscovery_interval = \"1s\"",
        &sqlite_sink(&replica),
    );
    through(&proxy, &config);
    let mut engine = spawn(&config, &dir.path().join("engine.log"));
    common::workload::run(&client, &table, 80, 600, 32, 4).await;
    wait_converged(&client, &table, &replica).await;
    assert!(proxy.injected() >= 20, "only {} faults", proxy.injected());

    // Every call fails for 8 s: the retries must back off, not spin.
    percent.store(100, Ordering::Relaxed);
    let outage = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    percent.store(0, Ordering::Relaxed);
    let settled = outage + Duration::from_secs(4);
    let count =
        |op: &str, since: Instant| proxy.arrivals(op).iter().filter(|at| **at >= since).count();
    for op in [
        ".GetRecords",
        ".GetShardIterator",
        ".DescribeStream",
        ".DescribeTable",
    ] {
        println!(
            "total outage of 8 s: {op}: {} requests, at most {} in one second, {} in the last 4 s",
            count(op, outage),
            proxy.peak_per_second(op, outage),
            count(op, settled)
        );
    }
    let (total, late) = (count("", outage), count("", settled));
    let peak = proxy.peak_per_second("", outage);
    println!("total outage of 8 s: {total} requests, at most {peak} in one second, {late} in the last 4 s");
    // One shard, its discovery and the metadata calls: backed off, a few
    // calls a second at most once the backoff has grown (a hot loop makes
    // hundreds).
    assert!(
        late <= 40,
        "{late} requests in the last 4 s of a total outage"
    );
    assert!(
        peak <= 30,
        "{peak} requests in one second of a total outage"
    );
    assert!(total >= 4, "only {total} retries in 8 s");

    common::workload::run(&client, &table, 80, 200, 33, 2).await;
    wait_converged(&client, &table, &replica).await;
    assert!(engine.try_wait().expect("engine status").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn stalls_past_the_request_timeout_are_retried() {
    let client = common::client().await;
    let table = common::unique_table("faults_stall");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 40, 200, 41, 2).await;

    let proxy = FaultProxy::with_actions(&common::endpoint(), |seen| {
        let streams_call = seen.target.starts_with("DynamoDBStreams_");
        if streams_call && seen.index % 4 == 1 {
            Action::Stall(Duration::from_secs(3))
        } else {
            Action::Forward
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let _logs = ReportLogs(dir.path().to_owned());
    let replica = dir.path().join("replica.db");
    let config = write_config(
        dir.path(),
        &[&table],
        "max_retry_backoff = \"500ms\"\nrequest_timeout = \"1s\"",
        &sqlite_sink(&replica),
    );
    through(&proxy, &config);
    let _engine = spawn(&config, &dir.path().join("engine.log"));
    common::workload::run(&client, &table, 40, 200, 42, 2).await;
    wait_converged(&client, &table, &replica).await;
    assert!(proxy.injected() >= 2, "only {} stalls", proxy.injected());
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_iterators_resume_after_the_last_record_without_duplicates() {
    let client = common::client().await;
    let table = common::unique_table("faults_expired");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 40, 300, 51, 2).await;

    let proxy = FaultProxy::start(&common::endpoint(), |seen| {
        (seen.target.ends_with(".GetRecords") && seen.index % 3 == 2)
            .then(|| Fault::new(400, "ExpiredIteratorException"))
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let _logs = ReportLogs(dir.path().to_owned());
    let replica = dir.path().join("replica.db");
    let changes = dir.path().join("changes");
    let config = write_config(
        dir.path(),
        &[&table],
        "batch_size = 25",
        &format!(
            "{}\n[[sinks]]\ntype = \"jsonl\"\ndir = \"{}\"\n",
            sqlite_sink(&replica),
            changes.display()
        ),
    );
    through(&proxy, &config);
    let output = run_until_caught_up(&config);
    assert!(proxy.injected() >= 3, "only {} expiries", proxy.injected());
    let expected = common::scan(&client, &table).await;
    common::assert_same(&expected, &common::replica(&replica, &table));
    let sequences = common::jsonl_sequences(&changes.join(&table));
    let mut distinct = sequences.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        sequences.len(),
        "a change was delivered twice"
    );
    assert_eq!(
        sequences.len() as u64,
        common::engine::records_read(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trimmed_checkpoint_halts_by_default_and_skips_when_told() {
    let client = common::client().await;
    let table = common::unique_table("faults_trim");
    common::create_table(&client, &table).await;
    common::put_items(&client, &table, "a", 20, 0).await;

    let proxy = FaultProxy::start(&common::endpoint(), |_| None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let _logs = ReportLogs(dir.path().to_owned());
    let replica = dir.path().join("replica.db");
    let config = write_config(dir.path(), &[&table], "", &sqlite_sink(&replica));
    through(&proxy, &config);
    run_until_caught_up(&config);
    assert_eq!(common::replica(&replica, &table).len(), 20);

    // While the engine is down the stream is trimmed past its checkpoint:
    // b0..b9 are gone, b10.. are still there.
    common::put_items(&client, &table, "b", 20, 0).await;
    proxy.set_trim_horizon(Some(common::streams::first_sequence(&table, "b10").await));

    let path = config.display().to_string();
    let halted = command(&["run", "--config", &path, "--exit-when-caught-up"])
        .output()
        .expect("run the engine");
    let log = String::from_utf8_lossy(&halted.stderr);
    assert!(!halted.status.success(), "on_trimmed = halt ran on:\n{log}");
    assert!(
        log.contains("trimmed"),
        "the error does not say trimmed:\n{log}"
    );
    assert_eq!(common::replica(&replica, &table).len(), 20);

    common::engine::set_table_option(&config, &table, "on_trimmed = \"skip\"");
    run_until_caught_up(&config);
    let keys: Vec<String> = common::replica(&replica, &table)
        .into_keys()
        .map(|(pk, _)| pk)
        .collect();
    let expected: Vec<String> = {
        let mut keys: Vec<String> = (0..20)
            .map(|n| format!("a{n}"))
            .chain((10..20).map(|n| format!("b{n}")))
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys, expected, "skip must lose exactly the trimmed changes");
    assert!(proxy.trimmed_away() >= 10, "{}", proxy.trimmed_away());
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_lease_table_calls_lose_nothing() {
    let client = common::client().await;
    let tables = common::fleet::tables_with_changes(&client, "faults_lease", 2, 61).await;
    let names: Vec<&str> = tables.iter().map(String::as_str).collect();
    let lease_table = common::fleet::new_lease_table(&client, "faults_leases").await;

    // Only DynamoDB's own API fails (the lease table, DescribeTable);
    // the stream reads go through untouched.
    let proxy = mixed_fault_proxy(Arc::new(AtomicU32::new(25)), "DynamoDB_20120810.").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let _logs = ReportLogs(dir.path().to_owned());
    let schema = format!("faults_lease_{}", std::process::id());
    let config = common::fleet::fleet_config(
        common::fleet::LEASE,
        dir.path(),
        &names,
        lease_table.name(),
        &schema,
    );
    through(&proxy, &config);
    let _one = common::fleet::worker(&config, dir.path(), "w1");
    let _two = common::fleet::worker(&config, dir.path(), "w2");
    let leases = &lease_table;
    common::wait_for_async(
        "every shard lease to be owned",
        Duration::from_secs(90),
        move || async move {
            let owners = common::fleet::owners(leases).await;
            owners.len() == 2 && owners.values().all(Option::is_some)
        },
    )
    .await;
    for table in &tables {
        common::workload::run(&client, table, 20, 100, 62, 2).await;
    }
    let pg = common::fleet::postgres().await;
    common::fleet::wait_live_equals_tables(&client, &pg, &schema, &names).await;
    assert!(proxy.injected() > 5, "only {} faults", proxy.injected());
}

/// The faults of the Kinesis test, taken in turn.
fn nth_kinesis_fault(n: u64) -> Action {
    match n % 7 {
        0 => Action::Fail(Fault::new(400, "ProvisionedThroughputExceededException")),
        1 => Action::Fail(Fault::new(400, "LimitExceededException")),
        2 => Action::Fail(Fault::new(500, "InternalFailure")),
        3 => Action::Fail(Fault::new(503, "ServiceUnavailable")),
        4 => Action::Fail(Fault::new(502, "")),
        5 => Action::Fail(Fault::new(400, "KMSThrottlingException")),
        _ => Action::Reset,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kinesis_throttling_server_errors_and_resets_lose_nothing() {
    use common::kinesis::pipeline::{forward_all, kinesis_config, setup};
    let (client, _kin, table, stream) = setup("kin_faults", 2).await;
    common::workload::run(&client, &table, 40, 300, 91, 2).await;
    forward_all(&table, &stream).await;
    let proxy = FaultProxy::with_actions(&common::kinesis::endpoint(), |seen| {
        let kinesis_call = seen.target.starts_with("Kinesis_");
        if kinesis_call && (seen.index < 7 || roll(seen) < 30) {
            nth_kinesis_fault(seen.index)
        } else {
            Action::Forward
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let _logs = ReportLogs(dir.path().to_owned());
    let replica = dir.path().join("replica.db");
    let config = kinesis_config(dir.path(), &[&table], &stream, "", &sqlite_sink(&replica));
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text
        .replace(&common::kinesis::endpoint(), &proxy.url)
        .replace(
            "[source]\n",
            "[source]\nkinesis_batch_size = 25\nmax_retry_backoff = \"1s\"\n",
        );
    std::fs::write(&config, text).expect("config");
    let output = tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    assert!(proxy.injected() >= 14, "only {} faults", proxy.injected());
    common::assert_same(
        &common::scan(&client, &table).await,
        &common::replica(&replica, &table),
    );
    // A failed or reset GetRecords is retried with the same iterator:
    // nothing is read twice.
    let forwarded: u64 = common::kinesis::read_all(&common::kinesis::client(), &stream)
        .await
        .iter()
        .map(|(_, records)| records.len() as u64)
        .sum();
    assert_eq!(common::engine::records_read(&output), forwarded);
}
