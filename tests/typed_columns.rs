//! `columns = "auto"`: typed columns inferred from the items, added and
//! widened while a workload adds attributes and changes their types, end
//! equal to the table value for value, through two SIGKILLs; the schema
//! history (`dynamo-cdc schema show`) records every change.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::engine::{command, spawn, write_config};
use common::evolving::{write_phase, PHASES};
use common::typed::{actual, expected};
use dynamo_cdc::model::Item;
use dynamo_cdc::schema::{naming, ColumnKind, SchemaEvent, SinkKinds};
use dynamo_cdc::sink::clickhouse::ClickHouseKinds;
use dynamo_cdc::sink::postgres::PostgresKinds;
use serde_json::Value;

type Key = (String, String);

fn sinks(targets: &Targets) -> String {
    let batch = "[sinks.batch]\nmax_records = 25\nmax_age = \"20ms\"\n";
    format!(
        "[[sinks]]\ntype = \"clickhouse\"\nname = \"ch\"\nurl = \"{}\"\ndatabase = \"{}\"\n\
         create_table = true\ncolumns = \"auto\"\n{batch}\n\
         [[sinks]]\ntype = \"postgres\"\nname = \"pg\"\nurl = \"{}\"\nschema = \"{}\"\n\
         create_table = true\ncolumns = \"auto\"\n{batch}",
        common::clickhouse::url(),
        targets.database,
        common::fleet::postgres_url(),
        targets.schema,
    )
}

/// The last kind of every column, by sink and column, from `schema show --json`.
fn final_kinds(config: &Path) -> BTreeMap<(String, String), (String, ColumnKind)> {
    let output = command(&[
        "schema",
        "show",
        "--json",
        "--config",
        &config.display().to_string(),
    ])
    .output()
    .expect("run schema show");
    assert!(
        output.status.success(),
        "schema show failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut kinds = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let row: Value = serde_json::from_str(line).expect("a JSON line");
        let sink = row["sink"].as_str().expect("sink").to_owned();
        let event: SchemaEvent = serde_json::from_value(row["event"].clone()).expect("event");
        kinds.insert((sink, event.column.clone()), (event.attribute, event.to));
    }
    kinds
}

/// The typed columns of a ClickHouse state table, by key and column.
async fn clickhouse_typed(
    database: &str,
    table: &str,
    columns: &[(String, ColumnKind)],
) -> BTreeMap<Key, BTreeMap<String, Value>> {
    // JSON numbers would pass through f64, and this server's toString of
    // a wide decimal is wrong: decimals are read as TabSeparated text.
    let (decimals, others): (Vec<_>, Vec<_>) = columns
        .iter()
        .partition(|(_, kind)| matches!(kind, ColumnKind::Decimal { .. }));
    let quoted = |list: &[&(String, ColumnKind)]| -> String {
        list.iter().map(|(name, _)| format!(", `{name}`")).collect()
    };
    let from = format!("FROM `{database}`.`{table}` FINAL WHERE _is_deleted = 0");
    let body = common::clickhouse::query(&format!(
        "SELECT pk, sk{} {from} FORMAT JSONEachRow",
        quoted(&others)
    ))
    .await;
    let mut rows = BTreeMap::new();
    for line in body.lines() {
        let mut row: BTreeMap<String, Value> = serde_json::from_str(line).expect("row");
        let pk = row.remove("pk").and_then(|v| v.as_str().map(str::to_owned));
        let sk = row.remove("sk").and_then(|v| v.as_str().map(str::to_owned));
        rows.insert((pk.expect("pk"), sk.expect("sk")), row);
    }
    let body = common::clickhouse::query(&format!(
        "SELECT pk, sk{} {from} FORMAT TabSeparated",
        quoted(&decimals)
    ))
    .await;
    for line in body.lines() {
        let mut fields = line.split('\t');
        let key = (
            fields.next().expect("pk").to_owned(),
            fields.next().expect("sk").to_owned(),
        );
        let row = rows.entry(key).or_default();
        for ((name, _), field) in decimals.iter().zip(fields) {
            let cell = match field {
                "\\N" => Value::Null,
                text => Value::String(text.to_owned()),
            };
            row.insert(name.clone(), cell);
        }
    }
    rows
}

/// The typed columns of a PostgreSQL table's live rows, by key and column:
/// numbers as their exact text, JSON columns as JSON text.
async fn postgres_typed(
    pg: &tokio_postgres::Client,
    schema: &str,
    table: &str,
    columns: &[(String, ColumnKind)],
) -> BTreeMap<Key, BTreeMap<String, Value>> {
    let select: String = columns
        .iter()
        .map(|(name, _)| format!(", to_json(\"{name}\")::text"))
        .collect();
    let rows = pg
        .query(
            &format!(
                "SELECT pk, sk::text{select} FROM \"{schema}\".\"{}\" WHERE NOT _deleted",
                table.to_lowercase()
            ),
            &[],
        )
        .await
        .expect("read the typed columns");
    let mut out = BTreeMap::new();
    for row in rows {
        let mut cells = BTreeMap::new();
        for (i, (name, kind)) in columns.iter().enumerate() {
            let raw: Option<String> = row.get(i + 2);
            let cell = match (raw, kind) {
                (None, _) => Value::Null,
                (Some(text), ColumnKind::Int | ColumnKind::Decimal { .. } | ColumnKind::Json) => {
                    Value::String(text)
                }
                (Some(text), _) => serde_json::from_str(&text).expect("a JSON cell"),
            };
            cells.insert(name.clone(), cell);
        }
        out.insert((row.get(0), row.get(1)), cells);
    }
    out
}

/// Every typed column of every row against the table's items; the
/// differences, as text (empty when equal).
fn typed_differences(
    sink: &dyn SinkKinds,
    items: &BTreeMap<Key, Item>,
    rows: &BTreeMap<Key, BTreeMap<String, Value>>,
    columns: &[(String, String, ColumnKind)],
) -> Vec<String> {
    let mut differences = Vec::new();
    if items.keys().ne(rows.keys()) {
        differences.push(format!(
            "keys differ: {} items, {} rows",
            items.len(),
            rows.len()
        ));
        return differences;
    }
    for (key, item) in items {
        for (column, attribute, kind) in columns {
            let want = expected(sink, *kind, item.get(attribute));
            let got = actual(*kind, rows[key].get(column).unwrap_or(&Value::Null));
            if want != got {
                differences.push(format!("{key:?} {column} ({kind}): want {want}, got {got}"));
            }
        }
    }
    differences
}

/// The columns of one sink: name, attribute and final kind.
fn sink_columns(config: &Path, sink: &str) -> Vec<(String, String, ColumnKind)> {
    final_kinds(config)
        .into_iter()
        .filter(|((name, _), _)| name == sink)
        .map(|((_, column), (attribute, kind))| (column, attribute, kind))
        .collect()
}

/// Where the test's sinks write.
struct Targets {
    database: String,
    schema: String,
    table: String,
}

/// The differences between each sink's typed columns and the table's items.
async fn differences(
    config: &Path,
    targets: &Targets,
    pg: &tokio_postgres::Client,
    items: &BTreeMap<Key, Item>,
) -> Vec<String> {
    let columns = sink_columns(config, "ch");
    // The history is written just before each ALTER: wait for the column.
    for (column, _, _) in &columns {
        if !column_exists(&targets.database, &targets.table, column).await {
            return vec![format!(
                "clickhouse: column {column} is recorded but not made yet"
            )];
        }
    }
    let select: Vec<(String, ColumnKind)> =
        columns.iter().map(|(c, _, k)| (c.clone(), *k)).collect();
    let rows = clickhouse_typed(&targets.database, &targets.table, &select).await;
    let kinds = ClickHouseKinds { bool_type: false };
    let mut found: Vec<String> = typed_differences(&kinds, items, &rows, &columns)
        .into_iter()
        .map(|d| format!("clickhouse: {d}"))
        .collect();
    if common::clickhouse::state(&targets.database, &targets.table).await != *items {
        found.push("clickhouse: _item differs from the table".into());
    }
    let columns = sink_columns(config, "pg");
    let select: Vec<(String, ColumnKind)> =
        columns.iter().map(|(c, _, k)| (c.clone(), *k)).collect();
    let rows = postgres_typed(pg, &targets.schema, &targets.table, &select).await;
    found.extend(
        typed_differences(&PostgresKinds, items, &rows, &columns)
            .into_iter()
            .map(|d| format!("postgres: {d}")),
    );
    found
}

async fn column_exists(database: &str, table: &str, column: &str) -> bool {
    let body = common::clickhouse::query(&format!(
        "SELECT count() FROM system.columns WHERE database = '{database}' AND table = '{table}' AND name = '{column}'"
    ))
    .await;
    body.trim() == "1"
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_columns_follow_changing_attributes_through_two_kills() {
    let client = common::client().await;
    let targets = Targets {
        database: common::clickhouse::unique_database("typed"),
        schema: common::unique_table("typed"),
        table: common::unique_table("typed"),
    };
    let (database, table) = (&targets.database, &targets.table);
    common::create_table(&client, table).await;
    let pg = common::fleet::postgres().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &[table], "batch_size = 20", &sinks(&targets));
    write_phase(&client, table, 0).await;
    let mut engine = spawn(&config, &dir.path().join("engine-1.log"));
    // A kill after the decimals arrive, and one after the last phase's
    // new attributes do: each restart replays what was not checkpointed
    // into columns that already exist.
    let kill_after = [(1, "price"), (PHASES - 1, "huge")];
    for phase in 1..PHASES {
        write_phase(&client, table, phase).await;
        if let Some((_, column)) = kill_after.iter().find(|(p, _)| *p == phase) {
            common::wait_for_async(
                &format!("column {column} in ClickHouse"),
                Duration::from_secs(60),
                || column_exists(database, table, column),
            )
            .await;
            engine.kill().expect("SIGKILL");
            engine.wait().expect("reap");
            engine = spawn(
                &config,
                &dir.path().join(format!("engine-{}.log", phase + 1)),
            );
        }
    }
    let items = common::scan(&client, table).await;
    let mut last = Vec::new();
    let converged = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            last = differences(&config, &targets, &pg, &items).await;
            if last.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(
        converged.is_ok(),
        "typed columns never matched the table: {:#?}",
        &last[..last.len().min(20)]
    );
    drop(engine);

    let kinds = final_kinds(&config);
    let kind_in = |sink: &str, attribute: &str| {
        kinds
            .iter()
            .find(|((s, _), (a, _))| s == sink && a == attribute)
            .map(|(_, (_, kind))| *kind)
            .unwrap_or_else(|| panic!("no column for {attribute:?} in {sink}: {kinds:?}"))
    };
    let kind_of = |attribute: &str| kind_in("ch", attribute);
    assert_eq!(
        kind_in("pg", "qty"),
        ColumnKind::Text,
        "bigint → numeric → text"
    );
    assert_eq!(
        kind_in("pg", "active"),
        ColumnKind::Text,
        "PostgreSQL widens bool to text"
    );
    assert!(
        matches!(kind_in("pg", "tiny"), ColumnKind::Decimal { .. }),
        "numeric holds 1E-130"
    );
    assert_eq!(kind_of("qty"), ColumnKind::Text, "int → decimal → text");
    assert_eq!(kind_of("price"), ColumnKind::Decimal { scale: 6 });
    assert_eq!(
        kind_of("active"),
        ColumnKind::Bool,
        "a UInt8 bool is not widened"
    );
    assert_eq!(kind_of("meta"), ColumnKind::Json);
    assert_eq!(kind_of("tags"), ColumnKind::TextArray);
    assert_eq!(kind_of("huge"), ColumnKind::Decimal { scale: 0 });
    assert_eq!(kind_of("tiny"), ColumnKind::Text);
    assert!(kinds.contains_key(&(
        "ch".to_owned(),
        naming::column_name("first name", |_| false)
    )));
    assert!(kinds.contains_key(&("ch".to_owned(), "___5Fversion".to_owned())));
    assert!(
        !kinds.values().any(|(a, _)| a == "note"),
        "an attribute that is only ever NULL gets no column"
    );
    let history = command(&["schema", "show", "--config", &config.display().to_string()])
        .output()
        .expect("schema show");
    let text = String::from_utf8_lossy(&history.stdout);
    assert!(text.contains("widened from decimal(6)"), "{text}");
}
