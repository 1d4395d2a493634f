//! Against DynamoDB Local: a random workload over every type converges into
//! the SQLite replica (value for value), JSON Lines get every change in
//! stream order, and a second run re-reads nothing.

use crate::common;

use std::collections::BTreeMap;
use std::io::BufRead;

use common::engine::{records_read, run_until_caught_up, write_config};

/// Every JSON Lines event under `dir/<table>/`, in file order.
fn jsonl_events(dir: &std::path::Path, table: &str) -> Vec<serde_json::Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join(table))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut events = Vec::new();
    for file in files {
        let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
            std::fs::File::open(&file).expect("open jsonl"),
        ));
        for line in reader.lines() {
            events.push(serde_json::from_str(&line.expect("line")).expect("event json"));
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn replica_converges_and_a_second_run_reads_nothing() {
    let client = common::client().await;
    let orders = common::unique_table("conv_orders");
    let users = common::unique_table("conv_users");
    common::create_table(&client, &orders).await;
    common::create_table(&client, &users).await;
    let counts = common::workload::run(&client, &orders, 160, 900, 11, 4).await;
    common::workload::run(&client, &users, 40, 200, 12, 2).await;
    assert!(
        counts.deletes > 50 && counts.reinserts > 10 && counts.updates > 100,
        "{counts:?}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let replica_path = dir.path().join("replica.db");
    let changes = dir.path().join("changes");
    let config = write_config(
        dir.path(),
        &[&orders, &users],
        "batch_size = 100",
        &format!(
            "[[sinks]]\ntype = \"sqlite\"\npath = \"{}\"\n\n[[sinks]]\ntype = \"jsonl\"\ndir = \"{}\"\ngzip = true\nrotate_bytes = 20000\n[sinks.batch]\nmax_records = 100\n",
            replica_path.display(),
            changes.display()
        ),
    );
    let first = tokio::task::spawn_blocking({
        let config = config.clone();
        move || run_until_caught_up(&config)
    })
    .await
    .expect("engine run");

    for table in [&orders, &users] {
        let expected = common::scan(&client, table).await;
        assert!(!expected.is_empty());
        common::assert_same(&expected, &common::replica(&replica_path, table));
    }

    // JSON Lines: every change once, in stream order, rotated into several files.
    let orders_events = jsonl_events(&changes, &orders);
    let users_events = jsonl_events(&changes, &users);
    assert_eq!(
        (orders_events.len() + users_events.len()) as u64,
        records_read(&first)
    );
    let sequences: Vec<u128> = orders_events
        .iter()
        .map(|e| {
            e["position"]["sequence"]
                .as_str()
                .expect("sequence")
                .parse()
                .expect("digits")
        })
        .collect();
    assert!(
        sequences.windows(2).all(|w| w[0] < w[1]),
        "events out of stream order"
    );
    let files = std::fs::read_dir(changes.join(&orders))
        .expect("dir")
        .count();
    assert!(files > 1, "rotation produced {files} file(s)");
    let ops: BTreeMap<&str, usize> = orders_events.iter().fold(BTreeMap::new(), |mut m, e| {
        *m.entry(e["op"].as_str().expect("op")).or_default() += 1;
        m
    });
    assert_eq!(ops.get("remove").copied(), Some(counts.deletes), "{ops:?}");

    // A second run after a clean stop re-reads nothing.
    let second = tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("engine run");
    assert_eq!(
        records_read(&second),
        0,
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(jsonl_events(&changes, &orders).len(), orders_events.len());
    common::assert_same(
        &common::scan(&client, &orders).await,
        &common::replica(&replica_path, &orders),
    );
}
