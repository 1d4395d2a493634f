//! Several engine processes sharing DynamoDB Local tables' streams through
//! a lease table: leases spread evenly, a SIGKILLed worker's shards are read
//! again by another within the lease duration, a stalled worker is fenced
//! and no row goes back, a SIGTERMed worker hands its shards over at once,
//! and the shared PostgreSQL sink equals every table.

use crate::common;

use std::time::{Duration, Instant};

use common::fleet::{
    fleet_config, new_lease_table, owners, signal, terminate, versions, wait_for_spread, worker,
    ReportLogs, LEASE, LONG_LEASE,
};

#[tokio::test(flavor = "multi_thread")]
async fn workers_share_shards_and_fail_over_after_sigkill() {
    let client = common::client().await;
    let tables: Vec<String> = (0..4)
        .map(|i| common::unique_table(&format!("lease{i}")))
        .collect();
    for table in &tables {
        common::create_table(&client, table).await;
        common::workload::run(&client, table, 30, 60, 90, 1).await;
    }
    let lease_table = new_lease_table(&client, "fleet_leases").await;
    let leases = &lease_table;
    let schema = common::unique_table("fleet");
    let dir = tempfile::tempdir().expect("temp dir");
    let names: Vec<&str> = tables.iter().map(String::as_str).collect();
    let config = fleet_config(LEASE, dir.path(), &names, lease_table.name(), &schema);

    let mut a = worker(&config, dir.path(), "worker-a");
    let mut b = worker(&config, dir.path(), "worker-b");
    let logs = dir.path().to_owned();
    let _report = ReportLogs(logs);
    wait_for_spread(
        leases,
        &[("worker-a", 2), ("worker-b", 2)],
        Duration::from_secs(60),
    )
    .await;

    // kill -9 worker-a: worker-b reads its shards within the lease duration.
    a.kill().expect("SIGKILL worker-a");
    a.wait().expect("reap worker-a");
    let killed = Instant::now();
    let writer = tokio::spawn({
        let (client, tables) = (client.clone(), tables.clone());
        async move {
            for table in &tables {
                common::workload::run(&client, table, 30, 30, 91, 1).await;
            }
        }
    });
    wait_for_spread(leases, &[("worker-b", 4)], Duration::from_secs(30)).await;
    let failover = killed.elapsed();
    writer.await.expect("writer");
    println!(
        "failover after SIGKILL: {:.1} s (lease duration {LEASE})",
        failover.as_secs_f64()
    );
    assert!(failover < Duration::from_secs(15), "{failover:?}");

    // worker-b catches up with everything; the sink equals every table.
    let pg = common::fleet::postgres().await;
    let names: Vec<&str> = tables.iter().map(String::as_str).collect();
    common::fleet::wait_live_equals_tables(&client, &pg, &schema, &names).await;
    terminate(&mut b);
    let status = b.wait().expect("reap worker-b");
    assert!(status.success(), "worker-b exited with {status}");
    let released = owners(leases).await;
    assert!(released.values().all(Option::is_none), "{released:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigtermed_worker_hands_its_shards_over_at_once() {
    let client = common::client().await;
    let tables: Vec<String> = (0..2)
        .map(|i| common::unique_table(&format!("handover{i}")))
        .collect();
    for table in &tables {
        common::create_table(&client, table).await;
        common::workload::run(&client, table, 10, 20, 98, 1).await;
    }
    let lease_table = new_lease_table(&client, "handover_leases").await;
    let leases = &lease_table;
    let dir = tempfile::tempdir().expect("temp dir");
    let names: Vec<&str> = tables.iter().map(String::as_str).collect();
    let schema = common::unique_table("handover");
    let config = fleet_config(LONG_LEASE, dir.path(), &names, lease_table.name(), &schema);
    let mut a = worker(&config, dir.path(), "worker-a");
    let mut b = worker(&config, dir.path(), "worker-b");
    let _report = ReportLogs(dir.path().to_owned());
    wait_for_spread(
        leases,
        &[("worker-a", 1), ("worker-b", 1)],
        Duration::from_secs(90),
    )
    .await;
    terminate(&mut b);
    let terminated = Instant::now();
    let status = b.wait().expect("reap worker-b");
    assert!(status.success(), "worker-b exited with {status}");
    wait_for_spread(leases, &[("worker-a", 2)], Duration::from_secs(25)).await;
    let handover = terminated.elapsed();
    println!(
        "handover after SIGTERM: {:.1} s (lease duration {LONG_LEASE})",
        handover.as_secs_f64()
    );
    // Far below the 30 s an expired lease would take: released, not expired.
    assert!(handover < Duration::from_secs(10), "{handover:?}");
    terminate(&mut a);
    assert!(a.wait().expect("reap worker-a").success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_worker_is_fenced_and_nothing_goes_backwards() {
    let client = common::client().await;
    let tables: Vec<String> = (0..2)
        .map(|i| common::unique_table(&format!("zombie{i}")))
        .collect();
    for table in &tables {
        common::create_table(&client, table).await;
        common::workload::run(&client, table, 20, 40, 95, 1).await;
    }
    let lease_table = new_lease_table(&client, "zombie_leases").await;
    let leases = &lease_table;
    let schema = common::unique_table("zombie");
    let dir = tempfile::tempdir().expect("temp dir");
    let names: Vec<&str> = tables.iter().map(String::as_str).collect();
    let config = fleet_config(LEASE, dir.path(), &names, lease_table.name(), &schema);
    let mut a = worker(&config, dir.path(), "worker-a");
    let mut b = worker(&config, dir.path(), "worker-b");
    let _report = ReportLogs(dir.path().to_owned());
    wait_for_spread(
        leases,
        &[("worker-a", 1), ("worker-b", 1)],
        Duration::from_secs(60),
    )
    .await;

    // Stall worker-a past its lease; worker-b takes its shard.
    signal(&a, "STOP");
    let writer = tokio::spawn({
        let client = client.clone();
        let tables = tables.clone();
        async move {
            for table in &tables {
                common::workload::run(&client, table, 20, 80, 96, 1).await;
            }
        }
    });
    wait_for_spread(leases, &[("worker-b", 2)], Duration::from_secs(30)).await;
    writer.await.expect("writer");
    let pg = common::fleet::postgres().await;
    for table in &tables {
        let expected = common::scan(&client, table).await;
        let (pg, schema, table) = (&pg, &schema, table.as_str());
        common::wait_for_async(
            "worker-b to apply the new changes",
            Duration::from_secs(60),
            || {
                let expected = expected.clone();
                async move { common::postgres::live(pg, schema, table).await == expected }
            },
        )
        .await;
    }
    let before: Vec<_> = {
        let mut all = Vec::new();
        for table in &tables {
            all.push(versions(&pg, &schema, table).await);
        }
        all
    };

    // The zombie wakes: it must notice, stop its reader, and write nothing older.
    signal(&a, "CONT");
    let log = dir.path().join("worker-a.log");
    common::wait_for(
        "worker-a to notice the lost lease",
        Duration::from_secs(20),
        || {
            std::fs::read_to_string(&log).is_ok_and(|text| {
                text.contains("lease lost: taken by another worker")
                    && text.contains("no longer the shard's owner")
            })
        },
    );
    // Afterwards worker-a may take a lease again by stealing it with the
    // current counter: ordinary balancing, which must not regress rows either.
    common::workload::run(&client, &tables[0], 20, 40, 97, 1).await;
    for (table, earlier) in tables.iter().zip(&before) {
        let now = versions(&pg, &schema, table).await;
        for (key, version) in earlier {
            let current = now.get(key).unwrap_or_else(|| panic!("{key:?} vanished"));
            let (old, new): (u128, u128) = (version.parse().unwrap(), current.parse().unwrap());
            assert!(new >= old, "{table} {key:?} went back from {old} to {new}");
        }
        let expected = common::scan(&client, table).await;
        let (pg, schema, table) = (&pg, &schema, table.as_str());
        common::wait_for_async(
            "the live view to equal the table",
            Duration::from_secs(60),
            || {
                let expected = expected.clone();
                async move { common::postgres::live(pg, schema, table).await == expected }
            },
        )
        .await;
    }
    for child in [&mut a, &mut b] {
        terminate(child);
        let status = child.wait().expect("reap a worker");
        assert!(status.success(), "a worker exited with {status}");
    }
}
