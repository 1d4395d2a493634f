//! The typed columns (`columns = "auto"`) of the ClickHouse and
//! PostgreSQL sinks against a table's items: each sink's columns and final
//! kinds from `schema show --json`, its rows read back, every value compared.

use std::collections::BTreeMap;
use std::path::Path;

use dynamo_cdc::model::Item;
use dynamo_cdc::schema::{ColumnKind, SchemaEvent, SinkKinds};
use dynamo_cdc::sink::clickhouse::ClickHouseKinds;
use dynamo_cdc::sink::postgres::PostgresKinds;
use serde_json::Value;

use super::engine::command;
use super::typed::{actual, expected};

/// An item's (pk, sk) text.
pub type Key = (String, String);

/// A `clickhouse` sink named `ch` and a `postgres` sink named `pg`, both
/// with `columns = "auto"`, into `targets`.
pub fn sinks(targets: &Targets) -> String {
    let batch = "[sinks.batch]\nmax_records = 25\nmax_age = \"20ms\"\n";
    format!(
        "[[sinks]]\ntype = \"clickhouse\"\nname = \"ch\"\nurl = \"{}\"\ndatabase = \"{}\"\n\
         create_table = true\ncolumns = \"auto\"\n{batch}\n\
         [[sinks]]\ntype = \"postgres\"\nname = \"pg\"\nurl = \"{}\"\nschema = \"{}\"\n\
         create_table = true\ncolumns = \"auto\"\n{batch}",
        super::clickhouse::url(),
        targets.database,
        super::fleet::postgres_url(),
        targets.schema,
    )
}

/// Every event `schema show --json` prints for `config`, with its sink's name.
pub fn schema_show(config: &Path) -> Vec<(String, SchemaEvent)> {
    let output = command(&[
        "schema",
        "show",
        "--json",
        "--config",
        &config.display().to_string(),
    ])
    // A lease-mode config names its worker and state in the environment.
    .env("WORKER_ID", "schema-show")
    .env("WORKER_STATE", std::env::temp_dir())
    .output()
    .expect("run schema show");
    assert!(
        output.status.success(),
        "schema show failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let row: Value = serde_json::from_str(line).expect("a JSON line");
            let sink = row["sink"].as_str().expect("sink").to_owned();
            let event = serde_json::from_value(row["event"].clone()).expect("an event");
            (sink, event)
        })
        .collect()
}

/// The last kind of every column, by sink and column, from `schema show --json`.
pub fn final_kinds(config: &Path) -> BTreeMap<(String, String), (String, ColumnKind)> {
    schema_show(config)
        .into_iter()
        .map(|(sink, event)| ((sink, event.column), (event.attribute, event.to)))
        .collect()
}

/// Waits until every typed column of both sinks equals `items`; while
/// they differ, prints the differences whenever they change (the last
/// print tells what never converged).
pub async fn wait_typed_columns_equal(
    config: &Path,
    targets: &Targets,
    pg: &tokio_postgres::Client,
    items: &BTreeMap<Key, Item>,
) {
    let last = std::sync::Mutex::new(Vec::<String>::new());
    let last = &last;
    super::wait_for_async(
        "the typed columns to equal the table",
        std::time::Duration::from_secs(120),
        || async move {
            let found = differences(config, targets, pg, items).await;
            let mut seen = last.lock().expect("lock");
            if !found.is_empty() && *seen != found {
                eprintln!("typed columns differ: {:#?}", &found[..found.len().min(20)]);
            }
            let done = found.is_empty();
            *seen = found;
            done
        },
    )
    .await;
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
    let body = super::clickhouse::query(&format!(
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
    let body = super::clickhouse::query(&format!(
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
pub struct Targets {
    /// ClickHouse database.
    pub database: String,
    /// PostgreSQL schema.
    pub schema: String,
    /// The source table (and target table name).
    pub table: String,
}

/// The differences between each sink's typed columns and the table's items.
pub async fn differences(
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
    if super::clickhouse::state(&targets.database, &targets.table).await != *items {
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

/// True when ClickHouse's target table has `column`.
pub async fn column_exists(database: &str, table: &str, column: &str) -> bool {
    let body = super::clickhouse::query(&format!(
        "SELECT count() FROM system.columns WHERE database = '{database}' AND table = '{table}' AND name = '{column}'"
    ))
    .await;
    body.trim() == "1"
}
