//! Three engine processes share eight DynamoDB Local tables' streams and a
//! six-shard Kinesis stream (kinesalite) through one lease table: the 14
//! leases end up within ±1 per worker, and every table reaches the shared
//! PostgreSQL sink.

use crate::common;

use std::time::Duration;

use common::fleet::{count, fleet_config, owners, terminate, worker, ReportLogs, LEASE};
use common::kinesis::{self, Forwarder, ForwarderOptions};

#[tokio::test(flavor = "multi_thread")]
async fn three_workers_spread_streams_and_kinesis_shards_within_one() {
    let client = common::client().await;
    let tables: Vec<String> = (0..8)
        .map(|i| common::unique_table(&format!("spread{i}")))
        .collect();
    for table in &tables {
        common::create_table(&client, table).await;
        common::workload::run(&client, table, 10, 20, 100, 1).await;
    }
    // A ninth table whose changes come through a 6-shard Kinesis stream.
    let via_kinesis = common::unique_table("spread_kin");
    let stream = kinesis::unique_stream("spread");
    common::create_table(&client, &via_kinesis).await;
    kinesis::create_stream(&kinesis::client(), &stream, 6).await;
    common::workload::run(&client, &via_kinesis, 40, 80, 101, 2).await;
    let forwarder = Forwarder::start(
        &common::endpoint(),
        &via_kinesis,
        &stream,
        ForwarderOptions::default(),
    );

    let lease_table = common::fleet::new_lease_table(&client, "spread_leases").await;
    let leases = &lease_table;
    let schema = common::unique_table("spread");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut names: Vec<&str> = tables.iter().map(String::as_str).collect();
    names.push(&via_kinesis);
    let config = fleet_config(LEASE, dir.path(), &names, lease_table.name(), &schema);
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text
        .replace(
            "[aws]\n",
            &format!(
                "[aws]\nkinesis_endpoint_url = \"{}\"\n",
                kinesis::endpoint()
            ),
        )
        .replace(
            &format!("name = \"{via_kinesis}\"\n"),
            &format!("name = \"{via_kinesis}\"\nkinesis_stream = \"{stream}\"\n"),
        );
    std::fs::write(&config, text).expect("config");

    let _report = ReportLogs(dir.path().to_owned());
    let mut workers: Vec<_> = ["worker-a", "worker-b", "worker-c"]
        .iter()
        .map(|id| worker(&config, dir.path(), id))
        .collect();
    common::wait_for_async(
        "14 leases within one of each other",
        Duration::from_secs(90),
        move || async move {
            let owners = owners(leases).await;
            let counts: Vec<usize> = ["worker-a", "worker-b", "worker-c"]
                .iter()
                .map(|w| count(&owners, w))
                .collect();
            owners.len() == 14
                && counts.iter().sum::<usize>() == 14
                && counts
                    .iter()
                    .max()
                    .zip(counts.iter().min())
                    .is_some_and(|(max, min)| max - min <= 1)
        },
    )
    .await;

    forwarder.wait_idle(Duration::from_secs(60)).await;
    forwarder.stop().await;
    let pg = common::fleet::postgres().await;
    common::fleet::wait_live_equals_tables(&client, &pg, &schema, &names).await;
    // `checkpoints show` reads the lease table: every lease, its owner,
    // counter, checkpoint and the checkpoint's age (once the owners'
    // renewals have carried the acknowledged checkpoints).
    let (config_path, viewer_state) = (config.clone(), dir.path().join("state-viewer"));
    let show = move || show_leases(&config_path, &viewer_state);
    common::wait_for(
        "9 or more leases with a checkpoint age",
        Duration::from_secs(30),
        || {
            show()
                .iter()
                .filter(|r| r["checkpoint_age_seconds"].is_u64())
                .count()
                >= 9
        },
    );
    let rows = show();
    assert_eq!(rows.len(), 14, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r["owner"].is_string() && r["counter"].as_u64() > Some(0)),
        "{rows:?}"
    );
    for child in &mut workers {
        terminate(child);
        let status = child.wait().expect("reap a worker");
        assert!(status.success(), "a worker exited with {status}");
    }
}

/// `checkpoints show --json` over the fleet's lease table, one value per lease.
fn show_leases(config: &std::path::Path, viewer_state: &std::path::Path) -> Vec<serde_json::Value> {
    let shown = common::engine::command(&[
        "checkpoints",
        "show",
        "--json",
        "--config",
        &config.display().to_string(),
    ])
    .env("WORKER_ID", "viewer")
    .env("WORKER_STATE", viewer_state)
    .output()
    .expect("checkpoints show");
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    String::from_utf8_lossy(&shown.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}
