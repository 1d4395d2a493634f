//! `columns = "auto"` with two workers sharing a lease table: both scan
//! segments of one table's snapshot into the same ClickHouse and
//! PostgreSQL tables, so both add the same columns at once. They converge
//! without an error or a refused row, each change is recorded once, and
//! every typed column of a random workload over every DynamoDB type (38-digit
//! and tiny numbers, empty strings, binary, sets, nested maps) equals the table.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::fleet::{fleet_config_with_sinks, terminate, worker, ReportLogs, LEASE};
use common::typed_sinks::{final_kinds, sinks, wait_typed_columns_equal, Targets};

const ITEMS: usize = 400;
const SEGMENTS: u32 = 6;

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_add_the_same_columns_and_converge() {
    let client = common::client().await;
    let targets = Targets {
        database: common::clickhouse::unique_database("typed_lease"),
        schema: common::unique_table("typed_lease"),
        table: common::unique_table("typed_lease"),
    };
    let table = targets.table.as_str();
    common::create_table(&client, table).await;
    let mut rng = fastrand::Rng::with_seed(26);
    for index in 0..ITEMS {
        let item = common::workload::random_item(&mut rng, &format!("k{index:04}"), "1");
        common::put_item(&client, table, &item).await;
    }
    let lease_table = common::fleet::new_lease_table(&client, "typed_leases").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = fleet_config_with_sinks(
        LEASE,
        dir.path(),
        &[table],
        lease_table.name(),
        &sinks(&targets),
    );
    common::engine::set_table_option(
        &config,
        table,
        &format!("snapshot = \"initial\"\nsnapshot_segments = {SEGMENTS}\nsnapshot_page_size = 20"),
    );
    let _report = ReportLogs(dir.path().to_owned());
    let mut workers = [
        worker(&config, dir.path(), "worker-a"),
        worker(&config, dir.path(), "worker-b"),
    ];
    let leases = &lease_table;
    common::wait_for_async(
        "the snapshot to finish",
        Duration::from_secs(120),
        move || async move {
            leases
                .snapshot_item(table)
                .await
                .expect("read the snapshot item")
                .is_some_and(|item| item.state == "done")
        },
    )
    .await;
    let scanners: BTreeSet<String> = lease_table
        .segment_items(table, SEGMENTS)
        .await
        .expect("segments")
        .into_iter()
        .filter_map(|s| s.scanned_by)
        .collect();
    assert_eq!(
        scanners.len(),
        2,
        "both workers scanned segments: {scanners:?}"
    );
    // A change after the snapshot brings one more attribute through the stream.
    client
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S("k0001".into()))
        .key("sk", AttributeValue::N("1".into()))
        .update_expression("SET late = :v")
        .expression_attribute_values(":v", AttributeValue::N("7".into()))
        .send()
        .await
        .expect("update an item");

    let pg = common::fleet::postgres().await;
    let items = common::scan(&client, table).await;
    wait_typed_columns_equal(&config, &targets, &pg, &items).await;
    for worker in &mut workers {
        terminate(worker);
    }
    let mut added_by_both = 0;
    let logs: Vec<String> = ["worker-a", "worker-b"]
        .iter()
        .map(|id| std::fs::read_to_string(dir.path().join(format!("{id}.log"))).expect("log"))
        .collect();
    for log in &logs {
        assert!(!log.contains(" ERROR "), "{log:.4000}");
    }
    for id in ["worker-a", "worker-b"] {
        let letters = dir
            .path()
            .join(format!("state-{id}/dead-letters/{table}.jsonl"));
        assert!(
            !letters.exists(),
            "{id} dead-lettered: {}",
            letters.display()
        );
    }
    let kinds = final_kinds(&config);
    for (sink, column) in kinds.keys() {
        let marker = format!("column={column} ");
        let by_each = logs
            .iter()
            .filter(|log| {
                log.lines().any(|l| {
                    l.contains("typed column added")
                        && l.contains(&marker)
                        && l.contains(&format!("sink={sink}"))
                })
            })
            .count();
        if by_each == 2 {
            added_by_both += 1;
        }
    }
    let attributes: BTreeSet<&str> = kinds.values().map(|(a, _)| a.as_str()).collect();
    for attribute in [
        "s", "big", "dec", "tiny", "bin", "flag", "tags", "nums", "blobs", "list", "doc", "late",
    ] {
        assert!(
            attributes.contains(attribute),
            "no column for {attribute}: {attributes:?}"
        );
    }
    assert!(
        !attributes.contains("nothing"),
        "an attribute only ever NULL gets no column"
    );
    println!(
        "{} columns over 2 sinks; {added_by_both} added by both workers at once; {} items",
        kinds.len(),
        items.len()
    );
}
