//! Snapshots with a lease table: the snapshot's state lives in the lease
//! table, its Scan segments are spread over the workers, a SIGKILLed
//! worker's segment is resumed by another from its stored progress, and
//! with changes made during the snapshot the shared PostgreSQL sink ends
//! equal to the table.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::fleet::{fleet_config, terminate, worker, ReportLogs, LEASE};
use dynamo_cdc::coordinator::lease::LeaseTable;

const ITEMS: usize = 1_200;
const SEGMENTS: u32 = 6;

async fn segments(
    leases: &LeaseTable,
    table: &str,
) -> Vec<dynamo_cdc::coordinator::lease::snapshot_items::SegmentItem> {
    leases
        .segment_items(table, SEGMENTS)
        .await
        .expect("read the segment items")
}

async fn snapshot_state(leases: &LeaseTable, table: &str) -> Option<String> {
    leases
        .snapshot_item(table)
        .await
        .expect("read the snapshot item")
        .map(|item| item.state)
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_share_a_snapshot_and_resume_a_killed_workers_segment() {
    let client = common::client().await;
    let table = common::unique_table("lease_snap");
    common::create_table(&client, &table).await;
    common::bulk::load(&client, &table, ITEMS, 4).await;
    let lease_table = common::fleet::new_lease_table(&client, "snap_leases").await;
    let leases = &lease_table;
    let schema = common::unique_table("lease_snap");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = fleet_config(LEASE, dir.path(), &[&table], lease_table.name(), &schema);
    common::engine::set_table_option(
        &config,
        &table,
        &format!(
            "snapshot = \"initial\"\nsnapshot_segments = {SEGMENTS}\nsnapshot_page_size = 20\n\
             snapshot_max_items_per_second = 40"
        ),
    );
    let _report = ReportLogs(dir.path().to_owned());
    let mut workers = [
        worker(&config, dir.path(), "worker-a"),
        worker(&config, dir.path(), "worker-b"),
        worker(&config, dir.path(), "worker-c"),
    ];

    // Every worker scans: each holds a segment with progress.
    let name = table.as_str();
    common::wait_for_async(
        "every worker to scan a segment",
        Duration::from_secs(60),
        move || async move {
            let owners: BTreeSet<String> = segments(leases, name)
                .await
                .into_iter()
                .filter(|s| !s.done && s.pages > 0)
                .filter_map(|s| s.owner)
                .collect();
            owners.len() == 3
        },
    )
    .await;
    // Changes during the snapshot reach the sink through the recorded positions.
    let writer = tokio::spawn({
        let (client, table) = (client.clone(), table.clone());
        async move { common::bulk::churn(&client, &table, ITEMS, 150, 7).await }
    });
    // kill -9 worker-a in the middle of its segments.
    let held_by_a: Vec<u32> = segments(leases, name)
        .await
        .into_iter()
        .filter(|s| !s.done && s.owner.as_deref() == Some("worker-a"))
        .map(|s| s.segment)
        .collect();
    assert!(
        !held_by_a.is_empty(),
        "worker-a holds no unfinished segment"
    );
    workers[0].kill().expect("SIGKILL worker-a");
    workers[0].wait().expect("reap worker-a");

    common::wait_for_async(
        "the snapshot to finish",
        Duration::from_secs(120),
        move || async move { snapshot_state(leases, name).await.as_deref() == Some("done") },
    )
    .await;
    writer.await.expect("writer");
    let finished = segments(leases, name).await;
    assert_eq!(finished.len(), SEGMENTS as usize);
    assert!(finished.iter().all(|s| s.done), "{finished:?}");
    for segment in &held_by_a {
        let by = finished[*segment as usize].scanned_by.as_deref();
        assert!(
            matches!(by, Some("worker-b" | "worker-c")),
            "segment {segment} of worker-a was finished by {by:?}"
        );
    }
    let items: u64 = finished.iter().map(|s| s.items).sum();
    println!("snapshot of {ITEMS} items: the segments stored {items} scanned items (changes ran meanwhile)");
    assert!(items > 0);

    // `checkpoints show` reports the snapshot kept in the lease table.
    let shown = common::engine::command(&[
        "checkpoints",
        "show",
        "--config",
        &config.display().to_string(),
    ])
    .env("WORKER_ID", "viewer")
    .env("WORKER_STATE", dir.path().join("state-viewer"))
    .output()
    .expect("checkpoints show");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    assert!(
        text.contains(&format!(
            "snapshot of {table}: done, {SEGMENTS}/{SEGMENTS} segment(s) done"
        )),
        "{text}"
    );

    let pg = common::fleet::postgres().await;
    common::fleet::wait_live_equals_tables(&client, &pg, &schema, &[name]).await;
    for child in workers.iter_mut().skip(1) {
        terminate(child);
        let status = child.wait().expect("reap a worker");
        assert!(status.success(), "a worker exited with {status}");
    }
}
