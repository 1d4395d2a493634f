//! The DDL and insert bodies the clickhouse sink generates for a modern
//! server (UInt256 versions, ReplacingMergeTree(_version, _is_deleted)),
//! executed in chdb (ClickHouse 26 in-process): `FINAL` gives the current state
//! even with replays and 40-digit sequence numbers.

use std::sync::Arc;

use dynamo_cdc::model::{
    AttributeValue, ChangeEvent, Item, KeyKind, Number, Op, Position, SequenceNumber, TableSchema,
};
use dynamo_cdc::sink::clickhouse::ClickHouseMode;
use dynamo_cdc::sink::clickhouse::{
    create_table_statement, encode_row, ServerVersion, TargetTable,
};
use dynamo_cdc::sink::columns::ColumnMapping;

fn python() -> String {
    std::env::var("DYNAMO_CDC_TEST_CHDB_PYTHON").unwrap_or_else(|_| {
        panic!("DYNAMO_CDC_TEST_CHDB_PYTHON is not set: run the tests with scripts/test.sh, which installs chdb")
    })
}

fn event(op: Op, pk: &str, sequence: &str, amount: &str) -> ChangeEvent {
    let keys = Item::from([
        ("pk".to_owned(), AttributeValue::S(pk.into())),
        (
            "sk".to_owned(),
            AttributeValue::N(Number::parse("1").unwrap()),
        ),
    ]);
    let mut image = keys.clone();
    image.insert(
        "amount".into(),
        AttributeValue::N(Number::parse(amount).unwrap()),
    );
    image.insert("paid".into(), AttributeValue::Bool(true));
    ChangeEvent {
        table: Arc::from("orders"),
        op,
        keys,
        new_image: op.is_upsert().then_some(image.into()),
        old_image: None,
        position: Position {
            shard: Arc::from("shardId-1"),
            sequence: SequenceNumber::parse(sequence).unwrap(),
        },
        version: SequenceNumber::parse(sequence).unwrap(),
        approx_time_ms: Some(1_700_000_000_000),
        ttl_delete: false,
        event_id: format!("ev-{sequence}"),
        size_bytes: 10,
    }
}

fn run_chdb(ddl: &str, target: &TargetTable, rows: &str, query: &str) -> String {
    let table = format!("{}.{}", target.database, target.name);
    let dir = tempfile::tempdir().expect("temp dir");
    let ddl_file = dir.path().join("ddl.sql");
    let rows_file = dir.path().join("rows.jsonl");
    std::fs::write(&ddl_file, ddl).expect("write ddl");
    std::fs::write(&rows_file, rows).expect("write rows");
    let script = format!("{}/scripts/chdb_check.py", env!("CARGO_MANIFEST_DIR"));
    let output = std::process::Command::new(python())
        .arg(script)
        .arg(&ddl_file)
        .arg(&table)
        .arg(&rows_file)
        .arg(query)
        .arg(target.insert_columns())
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "chdb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

fn target(mode: ClickHouseMode) -> TargetTable {
    let schema = TableSchema::new("orders", &[("pk", KeyKind::S), ("sk", KeyKind::N)]);
    let columns = [
        ColumnMapping {
            name: "amount".into(),
            attribute: None,
            column_type: "Decimal(38, 10)".into(),
            table: None,
        },
        ColumnMapping {
            name: "paid".into(),
            attribute: None,
            column_type: "Bool".into(),
            table: None,
        },
    ];
    TargetTable::new(&schema, "cdc", "", mode, &columns).expect("target")
}

#[test]
fn modern_state_table_keeps_the_newest_version_and_drops_deleted_items() {
    let caps = ServerVersion::parse("26.9.2.1")
        .expect("version")
        .capabilities();
    let table = target(ClickHouseMode::State);
    let ddl = create_table_statement(&table, caps);
    assert!(
        ddl.contains("ReplacingMergeTree(`_version`, `_is_deleted`)"),
        "{ddl}"
    );
    let big = |n: u32| format!("{}{:039}", 9, n); // 40-digit sequence numbers
    let events = [
        event(Op::Insert, "a", &big(1), "1.5"),
        event(Op::Modify, "a", &big(2), "12345678901234567890.1234567891"),
        event(Op::Insert, "b", &big(3), "7"),
        event(Op::Remove, "b", &big(4), "0"),
        event(Op::Insert, "c", "1000000000000000000000", "-0.25"),
        // Replays of older changes, as after a crash:
        event(Op::Insert, "a", &big(1), "1.5"),
        event(Op::Insert, "b", &big(3), "7"),
    ];
    let mut rows = String::new();
    for e in &events {
        encode_row(&table, e, caps, &mut rows).expect("row");
    }
    let out = run_chdb(
        &ddl,
        &table,
        &rows,
        "SELECT pk, toString(_version) AS v, toString(amount) AS amount, paid FROM cdc.orders FINAL WHERE _is_deleted = 0 ORDER BY pk FORMAT JSONEachRow",
    );
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0]["pk"], "a");
    assert_eq!(rows[0]["v"], big(2).as_str());
    assert_eq!(rows[0]["amount"], "12345678901234567890.1234567891");
    assert_eq!(rows[0]["paid"], true);
    assert_eq!(rows[1]["pk"], "c");
    assert_eq!(rows[1]["amount"], "-0.25");
}

#[test]
fn modern_changelog_table_takes_every_change() {
    let caps = ServerVersion::parse("26.9.2.1")
        .expect("version")
        .capabilities();
    let table = target(ClickHouseMode::Changelog);
    let ddl = create_table_statement(&table, caps);
    let events = [
        event(Op::Insert, "a", "1000000000000000000001", "1"),
        event(Op::Remove, "a", "1000000000000000000002", "0"),
    ];
    let mut rows = String::new();
    for e in &events {
        encode_row(&table, e, caps, &mut rows).expect("row");
    }
    let out = run_chdb(
        &ddl,
        &table,
        &rows,
        "SELECT _op, _sequence, _event_id FROM cdc.orders ORDER BY _version FORMAT TabSeparated",
    );
    assert_eq!(
        out,
        "insert\t1000000000000000000001\tev-1000000000000000000001\nremove\t1000000000000000000002\tev-1000000000000000000002\n"
    );
}
