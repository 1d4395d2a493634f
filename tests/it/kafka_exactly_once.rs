//! `delivery = "exactly_once"` into a Kafka-protocol broker (tansu), read
//! back through the committed view (tests/kafka_committed.py: raw batches,
//! Kafka's read_committed rules applied from the COMMIT/ABORT markers, as
//! tansu's own read_committed fetches return aborted records): through
//! SIGKILLs — one of them while a commit is on its way — and the loss of
//! the local checkpoints, every change of the stream is in the topic
//! exactly once and the last record per key equals a Scan; a lease handover fences the stalled worker's late
//! transaction and duplicates nothing; a one-minute broker outage is ridden
//! out by the same process without a duplicate.

use crate::common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::engine::{run_until_caught_up, write_config, Worker};
use common::fleet::{signal, wait_for_spread, ReportLogs};
use common::kafka::{self, CommittedView};
use common::kafka_compare::{
    self, assert_topic_equals, changes_difference, sink_config, topic_difference,
};

const DEBUG_LOG: &str = "info,dynamo_cdc::sink::kafka=debug";
const COMMITTING: &str = "committing a transaction";
const COMMITTED: &str = "transaction committed";

fn exactly_once_sink(brokers: &str, topic: &str) -> String {
    sink_config(
        brokers,
        topic,
        "delivery = \"exactly_once\"\ntransaction_timeout = \"20s\"",
    )
}

/// Starts `run` with the Kafka sink's transaction steps in its log.
fn spawn_logged(config: &Path, log: &Path, env: &[(&str, String)]) -> Worker {
    let file = std::fs::File::create(log).expect("log file");
    let mut command = common::engine::command(&["run", "--config", &config.display().to_string()]);
    command.env("RUST_LOG", DEBUG_LOG);
    for (name, value) in env {
        command.env(name, value);
    }
    Worker(
        command
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start the engine"),
    )
}

/// How many lines of `log` contain `needle`.
fn lines_with(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// True when the last transaction step in `log` is a commit that has not
/// completed.
fn commit_open(log: &Path) -> bool {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .find(|l| l.contains(COMMITTING) || l.contains(COMMITTED))
        .is_some_and(|l| l.contains(COMMITTING))
}

/// Asserts the committed view holds every change of `table`'s stream once
/// and ends, per key, with the table's item.
async fn assert_exactly_once(client: &aws_sdk_dynamodb::Client, table: &str, view: &CommittedView) {
    assert!(
        view.open.is_empty(),
        "open transactions left: {:?}",
        view.open
    );
    let stream = common::streams::records(table).await;
    if let Some(difference) = changes_difference(&view.records, &stream) {
        panic!("the committed view is not the stream once: {difference}");
    }
    let items = common::scan(client, table).await;
    assert_topic_equals(&view.records, &items);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_change_is_committed_once_through_kills_and_a_kill_during_a_commit() {
    let client = common::client().await;
    let table = common::unique_table("kafka_eo");
    common::create_table(&client, &table).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let _report = ReportLogs(dir.path().to_owned());
    // Through a proxy the broker advertises, which can slow every request.
    let (proxy, _broker, bootstrap) = kafka::proxied_broker(dir.path()).await;
    let topic = format!("{}.{{table}}", kafka::unique_topic_prefix("eo"));
    let config = write_config(
        dir.path(),
        &[&table],
        "batch_size = 50",
        &exactly_once_sink(&bootstrap, &topic),
    );
    let topic = topic.replace("{table}", &table);
    for round in 0..4u64 {
        common::workload::run(&client, &table, 100, 300, 300 + round, 4).await;
        let log = dir.path().join(format!("engine-{round}.log"));
        let mut engine = spawn_logged(&config, &log, &[]);
        // Killed once this run has committed some of the backlog.
        common::wait_for("a committed transaction", Duration::from_secs(60), || {
            lines_with(&log, COMMITTED) > 0
        });
        engine.kill().expect("SIGKILL");
        engine.wait().expect("reap");
    }
    // Every request now waits 300 ms, so a commit (offsets, then EndTxn)
    // takes over a second: the kill lands while it is on its way.
    common::workload::run(&client, &table, 100, 300, 310, 4).await;
    proxy.set_delay(Duration::from_millis(300));
    let log = dir.path().join("engine-commit.log");
    let mut engine = spawn_logged(&config, &log, &[]);
    common::wait_for("a commit on its way", Duration::from_secs(60), || {
        lines_with(&log, COMMITTING) > 0
    });
    engine.kill().expect("SIGKILL");
    engine.wait().expect("reap");
    assert_eq!(
        lines_with(&log, COMMITTED),
        0,
        "the kill was meant to land before the first commit completed"
    );
    proxy.set_delay(Duration::ZERO);

    // The local checkpoints are lost (a volume restored from an old
    // backup, a lagging lease): the stream is read again from its start,
    // and what the topic's transactions hold is not written twice.
    std::fs::remove_dir_all(dir.path().join("state")).expect("remove the state");
    common::workload::run(&client, &table, 100, 200, 320, 4).await;
    tokio::task::spawn_blocking({
        let config = config.clone();
        move || run_until_caught_up(&config)
    })
    .await
    .expect("run");
    let view = kafka::read_committed_view_from(&bootstrap, &topic);
    // The transaction killed during its commit was aborted by the next
    // start (its records are in the log, dropped by read_committed rules).
    assert!(view.aborted > 0, "no aborted record: {:?}", view.control);
    assert_exactly_once(&client, &table, &view).await;
    let raw = kafka::read_topic_from(&bootstrap, &topic, "read_uncommitted");
    assert!(
        raw.len() > view.records.len(),
        "the log holds the aborted records too"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lease_handover_fences_the_stalled_worker_and_duplicates_nothing() {
    let client = common::client().await;
    let tables = common::fleet::tables_with_changes(&client, "eo_lease", 2, 330).await;
    let names: Vec<&str> = tables.iter().map(String::as_str).collect();
    let lease_table = common::fleet::new_lease_table(&client, "eo_leases").await;
    let leases = &lease_table;
    let dir = tempfile::tempdir().expect("temp dir");
    let _report = ReportLogs(dir.path().to_owned());
    let (proxy, _broker, bootstrap) = kafka::proxied_broker(dir.path()).await;
    let topic = format!("{}.{{table}}", kafka::unique_topic_prefix("eolease"));
    let sink = exactly_once_sink(&bootstrap, &topic);
    let config = common::fleet::fleet_config_with_sinks(
        common::fleet::LEASE,
        dir.path(),
        &names,
        lease_table.name(),
        &sink,
    );
    let start = |id: &str| {
        let env = [
            ("WORKER_ID", id.to_owned()),
            (
                "WORKER_STATE",
                dir.path().join(format!("state-{id}")).display().to_string(),
            ),
        ];
        spawn_logged(&config, &dir.path().join(format!("{id}.log")), &env)
    };
    let mut a = start("worker-a");
    let mut b = start("worker-b");
    wait_for_spread(
        leases,
        &[("worker-a", 1), ("worker-b", 1)],
        Duration::from_secs(60),
    )
    .await;

    // worker-a is killed: worker-b takes its shard once the lease expires,
    // and its first transaction there settles what worker-a left open.
    for table in &tables {
        common::workload::run(&client, table, 20, 60, 331, 1).await;
    }
    a.kill().expect("SIGKILL worker-a");
    a.wait().expect("reap worker-a");
    wait_for_spread(leases, &[("worker-b", 2)], Duration::from_secs(60)).await;

    // A new worker-c shares the shards again; then worker-b stalls in the
    // middle of a commit (slowed by the proxy) past its lease.
    let mut c = start("worker-c");
    wait_for_spread(
        leases,
        &[("worker-b", 1), ("worker-c", 1)],
        Duration::from_secs(60),
    )
    .await;
    let b_log = dir.path().join("worker-b.log");
    let committing_before = lines_with(&b_log, COMMITTING);
    proxy.set_delay(Duration::from_millis(300));
    // Changes keep coming while the test waits for a commit in flight.
    let writer = tokio::spawn({
        let (client, tables) = (client.clone(), tables.clone());
        async move {
            for round in 0..4 {
                for table in &tables {
                    common::workload::run(&client, table, 20, 30, 332 + round, 1).await;
                }
            }
        }
    });
    common::wait_for(
        "worker-b in the middle of a commit",
        Duration::from_secs(60),
        || lines_with(&b_log, COMMITTING) > committing_before && commit_open(&b_log),
    );
    signal(&b, "STOP");
    let stalled_at = std::fs::read_to_string(&b_log)
        .expect("worker-b's log")
        .len();
    writer.await.expect("writer");
    proxy.set_delay(Duration::ZERO);
    wait_for_spread(leases, &[("worker-c", 2)], Duration::from_secs(60)).await;
    for table in &tables {
        common::workload::run(&client, table, 20, 60, 333, 1).await;
    }
    // worker-c has written past worker-b's stalled transaction.
    for table in &tables {
        let items = common::scan(&client, table).await;
        let (bootstrap, topic) = (bootstrap.clone(), topic.replace("{table}", table));
        common::wait_for_async("worker-c to catch up", Duration::from_secs(90), || {
            let (items, bootstrap, topic) = (items.clone(), bootstrap.clone(), topic.clone());
            async move {
                tokio::task::spawn_blocking(move || {
                    let view = kafka::read_committed_view_from(&bootstrap, &topic);
                    view.open.is_empty() && topic_difference(&view.records, &items).is_none()
                })
                .await
                .expect("read")
            }
        })
        .await;
    }
    // worker-b wakes up: its late transaction cannot commit (worker-c's
    // producer took the transactional id and aborted it), its lease is
    // gone so its reader stops, and nothing it still held reaches the
    // topic. (tansu answers a stale TxnOffsetCommit or Produce with
    // PRODUCER_FENCED, but lets a stale EndTxn time out: either fails the
    // transaction.)
    signal(&b, "CONT");
    let woken_log = || {
        let text = std::fs::read_to_string(&b_log).expect("worker-b's log");
        text[stalled_at..].to_owned()
    };
    common::wait_for(
        "worker-b's stalled transaction to fail",
        Duration::from_secs(60),
        || woken_log().contains("a transaction failed"),
    );
    for table in &tables {
        let view = kafka::read_committed_view_from(&bootstrap, &topic.replace("{table}", table));
        assert_exactly_once(&client, table, &view).await;
    }
    // The stalled transaction never committed: its failure comes before
    // any commit worker-b made after waking up (it may take a shard again
    // to balance the fleet, and commit that legitimately).
    let woken = woken_log();
    let failed_at = woken.find("a transaction failed").expect("the failure");
    assert!(
        !woken[..failed_at].contains(COMMITTED),
        "worker-b's stalled transaction committed: {woken}"
    );
    for worker in [&mut b, &mut c] {
        common::fleet::terminate(worker);
        worker.wait().expect("reap");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_process_rides_out_a_broker_outage_without_duplicates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (proxy, _broker, bootstrap) = kafka::proxied_broker(dir.path()).await;
    let topic = format!("{}.{{table}}", kafka::unique_topic_prefix("eodown"));
    let sink = format!(
        "{}unready_after = \"2s\"\n",
        exactly_once_sink(&bootstrap, &topic)
    );
    let mut run = common::outage::LiveRun::start("kafka_eo_down", dir.path(), &sink).await;
    let topic = topic.replace("{table}", &run.table);
    let (bootstrap, topic) = (bootstrap.as_str(), topic.as_str());
    run.survive_outage(
        "kafka",
        |down| proxy.set_up(!down),
        |items| async move {
            // Reading a topic that does not exist yet fails.
            std::panic::catch_unwind(|| kafka::read_committed_view_from(bootstrap, topic))
                .is_ok_and(|view| {
                    view.open.is_empty() && topic_difference(&view.records, &items).is_none()
                })
        },
    )
    .await;
    let view = kafka::read_committed_view_from(bootstrap, topic);
    assert_exactly_once(&run.client, &run.table, &view).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_too_large_is_dead_lettered_and_the_rest_commits() {
    kafka_compare::check_a_record_too_large(
        "kafka_eo_big",
        "delivery = \"exactly_once\"",
        |topic| kafka::read_committed_view(topic).records,
    )
    .await;
}
