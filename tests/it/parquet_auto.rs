//! `columns = "auto"` on the `s3` sink's Parquet files, against DynamoDB
//! Local and moto: while a workload adds attributes and changes their
//! types, files gain typed columns and later files carry wider types; read
//! back with pyarrow, each item's last change holds the table's values,
//! through two SIGKILLs; the `_schema` objects record every change once
//! (`dynamo-cdc schema show`), also when two engines race on one prefix.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::engine::{command, spawn, write_config};
use common::evolving::{item, write_phase, KEYS, PHASES};
use common::typed::{actual, expected};
use common::typed_sinks::schema_show;
use dynamo_cdc::decode::decode_item;
use dynamo_cdc::model::Item;
use dynamo_cdc::schema::{ColumnKind, SchemaEvent};
use dynamo_cdc::sink::s3::{event_key, ObjectNotice, ParquetKinds};
use serde_json::Value;

type Key = (String, String);

const PREFIX: &str = "landing/";

/// The `[[sinks]]` section: Parquet, inferred columns, small batches.
fn s3_sink(bucket: &str, queue_url: Option<&str>) -> String {
    let queue = queue_url
        .map(|url| format!("sqs_queue_url = \"{url}\"\n"))
        .unwrap_or_default();
    format!(
        "[[sinks]]\ntype = \"s3\"\nname = \"lake\"\nbucket = \"{bucket}\"\nprefix = \"{PREFIX}\"\n\
         region = \"us-east-1\"\nendpoint_url = \"{}\"\n{queue}format = \"parquet\"\n\
         columns = \"auto\"\n[sinks.batch]\nmax_records = 25\nmax_age = \"20ms\"\n",
        common::moto::url()
    )
}

/// One Parquet object as pyarrow reads it.
struct ParquetFile {
    key: String,
    types: BTreeMap<String, String>,
    rows: Vec<BTreeMap<String, Value>>,
}

fn python() -> String {
    std::env::var("DYNAMO_CDC_TEST_CHDB_PYTHON").unwrap_or_else(|_| {
        panic!("DYNAMO_CDC_TEST_CHDB_PYTHON is not set: run the tests with scripts/test.sh, which installs pyarrow")
    })
}

/// Every Parquet object of `table`, read with pyarrow.
async fn read_files(bucket: &str, table: &str) -> Vec<ParquetFile> {
    let keys = common::moto::list_keys(bucket, &format!("{PREFIX}{table}/")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut paths = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        assert!(key.ends_with(".parquet"), "not a data file: {key}");
        let path = dir.path().join(format!("{index}.parquet"));
        std::fs::write(&path, common::moto::get_object(bucket, key).await).expect("write file");
        paths.push(path.display().to_string());
    }
    if paths.is_empty() {
        return Vec::new();
    }
    let script = format!("{}/tests/parquet_read.py", env!("CARGO_MANIFEST_DIR"));
    let output = std::process::Command::new(python())
        .arg(script)
        .args(&paths)
        .output()
        .expect("run pyarrow");
    assert!(
        output.status.success(),
        "pyarrow failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .zip(keys)
        .map(|(line, key)| {
            let mut file: Value = serde_json::from_str(line).expect("a JSON line");
            ParquetFile {
                key,
                types: serde_json::from_value(file["types"].take()).expect("types"),
                rows: serde_json::from_value(file["rows"].take()).expect("rows"),
            }
        })
        .collect()
}

/// True when some Parquet object of `table` has a column `column` (read
/// with the engine's own Parquet library: this only paces the test).
async fn some_file_has(bucket: &str, table: &str, column: &str) -> bool {
    for key in common::moto::list_keys(bucket, &format!("{PREFIX}{table}/")).await {
        let body = bytes::Bytes::from(common::moto::get_object(bucket, &key).await);
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(body)
            .expect("a Parquet file");
        if reader.schema().field_with_name(column).is_ok() {
            return true;
        }
    }
    false
}

/// The history as `schema show --json` prints it (one sink, `lake`).
fn history(config: &Path) -> Vec<SchemaEvent> {
    schema_show(config)
        .into_iter()
        .map(|(sink, event)| {
            assert_eq!(sink, "lake");
            event
        })
        .collect()
}

/// Each column's attribute and final kind: where its chain of changes
/// ends (the join of the ends, had racers diverged).
fn final_columns(events: &[SchemaEvent]) -> BTreeMap<String, (String, ColumnKind)> {
    let mut columns: BTreeMap<String, (String, ColumnKind)> = BTreeMap::new();
    for event in events {
        let end = !events
            .iter()
            .any(|e| e.column == event.column && e.from == Some(event.to));
        if end {
            columns
                .entry(event.column.clone())
                .and_modify(|(_, kind)| *kind = kind.join(event.to))
                .or_insert((event.attribute.clone(), event.to));
        }
    }
    columns
}

/// pyarrow's name of the Arrow type of `kind`'s column.
fn pyarrow_type(kind: ColumnKind) -> String {
    match kind {
        ColumnKind::Bool => "bool".into(),
        ColumnKind::Int => "int64".into(),
        ColumnKind::Decimal { scale } => format!("decimal128(38, {scale})"),
        ColumnKind::Text | ColumnKind::Binary | ColumnKind::Json => "string".into(),
        ColumnKind::TextArray => "list<item: string>".into(),
    }
}

/// A key's last change: its file, row and sequence number.
struct LastRow<'a> {
    file: &'a ParquetFile,
    row: &'a BTreeMap<String, Value>,
}

fn last_rows(files: &[ParquetFile]) -> BTreeMap<Key, LastRow<'_>> {
    let mut last: BTreeMap<Key, (u128, LastRow<'_>)> = BTreeMap::new();
    for file in files {
        for row in &file.rows {
            let keys = decode_item(row["keys"].as_str().expect("keys")).expect("keys JSON");
            let sequence: u128 = row["sequence"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("sequence digits");
            let key = common::key_of(&keys);
            if last.get(&key).is_none_or(|(seen, _)| sequence > *seen) {
                last.insert(key, (sequence, LastRow { file, row }));
            }
        }
    }
    last.into_iter().map(|(k, (_, row))| (k, row)).collect()
}

/// The items the workload deleted, as their last image before the delete.
fn deleted_items() -> BTreeMap<Key, Item> {
    (0..KEYS)
        .filter(|index| item(PHASES - 1, *index).is_none())
        .map(|index| {
            let before = (0..PHASES - 1)
                .rev()
                .find_map(|phase| item(phase, index))
                .expect("an item before the delete");
            (common::key_of(&before), before)
        })
        .collect()
}

/// Every key's last change against the table (live items) and the
/// deleted items' old images; the differences, as text.
fn differences(
    items: &BTreeMap<Key, Item>,
    files: &[ParquetFile],
    columns: &BTreeMap<String, (String, ColumnKind)>,
) -> Vec<String> {
    let deleted = deleted_items();
    let last = last_rows(files);
    let mut found = Vec::new();
    if last.len() != items.len() + deleted.len() {
        found.push(format!(
            "{} keys in the files, {} in the table and {} deleted",
            last.len(),
            items.len(),
            deleted.len()
        ));
        return found;
    }
    for (key, row) in &last {
        let op = row.row["op"].as_str().unwrap_or_default();
        // A remove's typed columns hold its old image (the stream has them).
        let (item, want_op) = match (items.get(key), deleted.get(key)) {
            (Some(item), _) => (item, op != "remove"),
            (None, Some(old)) => (old, op == "remove"),
            (None, None) => {
                found.push(format!("{key:?} is neither in the table nor deleted"));
                continue;
            }
        };
        if !want_op {
            found.push(format!("{key:?}: last change is {op} ({})", row.file.key));
        }
        for (column, (attribute, kind)) in columns {
            let arrow = row.file.types.get(column).map(String::as_str);
            if arrow != Some(pyarrow_type(*kind).as_str()) {
                found.push(format!(
                    "{key:?} {column}: {} has type {arrow:?}, want {}",
                    row.file.key,
                    pyarrow_type(*kind)
                ));
                continue;
            }
            let want = expected(&ParquetKinds, *kind, item.get(attribute));
            let got = actual(*kind, row.row.get(column).unwrap_or(&Value::Null));
            if want != got {
                found.push(format!("{key:?} {column} ({kind}): want {want}, got {got}"));
            }
        }
    }
    found
}

/// Waits until every key's last change matches the table; returns the
/// files and the history they were checked against.
async fn converge(
    config: &Path,
    bucket: &str,
    table: &str,
    items: &BTreeMap<Key, Item>,
) -> (Vec<ParquetFile>, Vec<SchemaEvent>) {
    let found = std::sync::Mutex::new(None);
    let last = std::sync::Mutex::new(Vec::<String>::new());
    let (found_ref, last_ref) = (&found, &last);
    common::wait_for_async(
        "the Parquet files to match the table",
        Duration::from_secs(120),
        || async move {
            let events = history(config);
            let files = read_files(bucket, table).await;
            let now = differences(items, &files, &final_columns(&events));
            let mut seen = last_ref.lock().expect("lock");
            if !now.is_empty() && *seen != now {
                eprintln!("Parquet files differ: {:#?}", &now[..now.len().min(20)]);
            }
            let done = now.is_empty();
            *seen = now;
            if done {
                *found_ref.lock().expect("lock") = Some((files, events));
            }
            done
        },
    )
    .await;
    let converged = found.lock().expect("lock").take();
    converged.expect("converged")
}

/// The `_schema` objects hold exactly the events `schema show` prints,
/// one per change (column, kind before, kind after), and every widening
/// starts from a recorded kind. With one writer at a time, each column's
/// changes are one chain: added once, each `from` the previous `to`.
/// Racing writers may each add a column (at different kinds) first.
async fn check_history(bucket: &str, table: &str, events: &[SchemaEvent], one_writer: bool) {
    let objects = common::moto::list_keys(bucket, &format!("{PREFIX}_schema/{table}/")).await;
    let mut recorded: Vec<String> = events.iter().map(|e| event_key(PREFIX, e)).collect();
    recorded.sort();
    let distinct: BTreeSet<&String> = recorded.iter().collect();
    assert_eq!(
        distinct.len(),
        recorded.len(),
        "each change once: {recorded:?}"
    );
    assert_eq!(objects, recorded, "one object per printed event");
    let mut chains: BTreeMap<&str, Vec<&SchemaEvent>> = BTreeMap::new();
    for event in events {
        assert_eq!(event.table, table);
        chains.entry(&event.column).or_default().push(event);
    }
    for (column, mut chain) in chains {
        chain.sort_by_key(|e| (e.version.len(), e.version.clone()));
        for event in &chain {
            assert!(
                event
                    .from
                    .is_none_or(|from| chain.iter().any(|e| e.to == from)),
                "{column}: widened from a kind never recorded: {chain:?}"
            );
        }
        if one_writer {
            assert_eq!(chain[0].from, None, "{column} starts added: {chain:?}");
            for pair in chain.windows(2) {
                assert_eq!(pair[1].from, Some(pair[0].to), "{column}: {chain:?}");
            }
        }
    }
}

/// Files written after a widening have the wider type: a change is
/// recorded before the file holding its version is written, so every file
/// that starts at or after that version carries the change's kind or one
/// its column widened to later. (Files before it may have either: a replay
/// after a restart writes old changes with the columns as they then stand.)
fn check_widenings(files: &[ParquetFile], events: &[SchemaEvent]) {
    let first_sequence = |file: &ParquetFile| -> u128 {
        file.rows
            .iter()
            .filter_map(|r| r["sequence"].as_str()?.parse().ok())
            .min()
            .expect("a row")
    };
    let version = |event: &SchemaEvent| -> u128 { event.version.parse().expect("digits") };
    for event in events.iter().filter(|e| e.from.is_some()) {
        let mut chain: Vec<&SchemaEvent> =
            events.iter().filter(|e| e.column == event.column).collect();
        chain.sort_by_key(|e| version(e));
        let allowed: Vec<String> = chain
            .iter()
            .filter(|e| version(e) >= version(event))
            .map(|e| pyarrow_type(e.to))
            .collect();
        for file in files.iter().filter(|f| first_sequence(f) >= version(event)) {
            let arrow = file.types.get(&event.column).cloned().unwrap_or_default();
            assert!(
                allowed.contains(&arrow),
                "{} starts after {} became {} at {} but has {arrow:?}",
                file.key,
                event.column,
                event.to,
                event.version
            );
        }
    }
}

/// No dead letters under `dir` (no file, or an empty one).
fn assert_no_dead_letters(dir: &Path, table: &str) {
    let path = dir.join(format!("state/dead-letters/{table}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(text.trim().is_empty(), "dead letters: {text}");
}

/// A bucket with a unique name.
async fn new_bucket(name: &str) -> String {
    let bucket = common::unique_table(name).replace('_', "-");
    common::moto::create_bucket(&bucket).await;
    bucket
}

#[tokio::test(flavor = "multi_thread")]
async fn parquet_columns_follow_changing_attributes_through_two_kills() {
    let client = common::client().await;
    let table = common::unique_table("pq_auto");
    common::create_table(&client, &table).await;
    let bucket = new_bucket("pq-auto").await;
    let sqs = common::moto::sqs();
    let queue_url = common::moto::create_queue(&bucket).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = s3_sink(&bucket, Some(&queue_url));
    let config = write_config(dir.path(), &[&table], "batch_size = 20", &sink);
    write_phase(&client, &table, 0).await;
    let mut engine = spawn(&config, &dir.path().join("engine-1.log"));
    // Phase 0 lands before phase 1 is written: qty's first files are Int64.
    common::wait_for_async(
        "a Parquet file with column qty",
        Duration::from_secs(60),
        || some_file_has(&bucket, &table, "qty"),
    )
    .await;
    // A kill once the decimals have a column in a file, and one once the
    // last phase's new attributes do: each restart rebuilds the columns
    // from the `_schema` objects and replays what was not checkpointed.
    let kill_after = [(1, "price"), (PHASES - 1, "huge")];
    for phase in 1..PHASES {
        write_phase(&client, &table, phase).await;
        if let Some((_, column)) = kill_after.iter().find(|(p, _)| *p == phase) {
            common::wait_for_async(
                &format!("a Parquet file with column {column}"),
                Duration::from_secs(60),
                || some_file_has(&bucket, &table, column),
            )
            .await;
            engine.kill().expect("SIGKILL");
            engine.wait().expect("reap");
            let log = dir.path().join(format!("engine-{}.log", phase + 1));
            engine = spawn(&config, &log);
        }
    }
    let items = common::scan(&client, &table).await;
    let (files, events) = converge(&config, &bucket, &table, &items).await;
    assert!(
        matches!(engine.try_wait(), Ok(None)),
        "the engine is running"
    );
    drop(engine);

    let columns = final_columns(&events);
    let kind_of = |attribute: &str| {
        columns
            .values()
            .find(|(a, _)| a == attribute)
            .map(|(_, kind)| *kind)
            .unwrap_or_else(|| panic!("no column for {attribute:?}: {columns:?}"))
    };
    assert_eq!(kind_of("pk"), ColumnKind::Text, "keys get columns too");
    assert_eq!(kind_of("sk"), ColumnKind::Int);
    assert_eq!(kind_of("qty"), ColumnKind::Text, "int → decimal → text");
    assert_eq!(kind_of("price"), ColumnKind::Decimal { scale: 6 });
    assert_eq!(kind_of("active"), ColumnKind::Text, "bool → text");
    assert_eq!(kind_of("blob"), ColumnKind::Binary);
    assert_eq!(kind_of("tags"), ColumnKind::TextArray);
    assert_eq!(kind_of("readings"), ColumnKind::TextArray);
    assert_eq!(kind_of("meta"), ColumnKind::Json);
    assert_eq!(kind_of("list"), ColumnKind::Json);
    assert_eq!(kind_of("huge"), ColumnKind::Decimal { scale: 0 });
    assert_eq!(kind_of("tiny"), ColumnKind::Text);
    assert!(columns.contains_key("__first_20name"), "{columns:?}");
    assert!(columns.contains_key("___5Fversion"), "{columns:?}");
    assert!(
        !columns.values().any(|(a, _)| a == "note"),
        "an attribute that is only ever NULL gets no column"
    );
    check_history(&bucket, &table, &events, true).await;
    let qty: Vec<String> = events
        .iter()
        .filter(|e| e.attribute == "qty")
        .map(|e| format!("{} {}", e.action(), e.to))
        .collect();
    assert_eq!(
        qty,
        [
            "added int",
            "widened from int decimal(6)",
            "widened from decimal(6) text"
        ]
    );
    check_widenings(&files, &events);
    let qty_types: BTreeSet<&str> = files
        .iter()
        .filter_map(|f| f.types.get("qty").map(String::as_str))
        .collect();
    assert_eq!(
        qty_types,
        BTreeSet::from(["int64", "decimal128(38, 6)", "string"]),
        "qty's files: Int64, then Decimal128, then Utf8"
    );
    let text = command(&["schema", "show", "--config", &config.display().to_string()])
        .output()
        .expect("schema show");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("widened from decimal(6)"), "{text}");
    assert_no_dead_letters(dir.path(), &table);
    // Loaders only read announced objects: no notice names a `_schema` object.
    let notices: Vec<ObjectNotice> = common::moto::drain(&sqs, &queue_url)
        .await
        .iter()
        .map(|b| serde_json::from_str(b).expect("notice"))
        .collect();
    assert!(!notices.is_empty());
    for notice in &notices {
        assert!(
            notice.key.starts_with(&format!("{PREFIX}{table}/dt=")),
            "{}",
            notice.key
        );
    }
    let widenings = events.iter().filter(|e| e.from.is_some()).count();
    let rows: usize = files.iter().map(|f| f.rows.len()).sum();
    eprintln!(
        "{} objects, {rows} rows, {} notices, {} changes ({} columns, {widenings} widenings)",
        files.len(),
        notices.len(),
        events.len(),
        columns.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn engines_racing_on_one_prefix_record_each_change_once() {
    let client = common::client().await;
    let table = common::unique_table("pq_race");
    common::create_table(&client, &table).await;
    let bucket = new_bucket("pq-race").await;
    let sink = s3_sink(&bucket, None);
    let dirs = [tempfile::tempdir(), tempfile::tempdir()].map(|d| d.expect("temp dir"));
    // Two engines with their own checkpoints follow the same stream into
    // the same prefix: they plan the same changes at the same time.
    let configs: Vec<_> = dirs
        .iter()
        .map(|d| write_config(d.path(), &[&table], "batch_size = 20", &sink))
        .collect();
    let mut engines: Vec<_> = dirs
        .iter()
        .zip(&configs)
        .map(|(d, c)| spawn(c, &d.path().join("engine.log")))
        .collect();
    for phase in 0..PHASES {
        write_phase(&client, &table, phase).await;
    }
    let items = common::scan(&client, &table).await;
    let (files, events) = converge(&configs[0], &bucket, &table, &items).await;
    for engine in &mut engines {
        assert!(matches!(engine.try_wait(), Ok(None)), "both engines run");
    }
    check_history(&bucket, &table, &events, false).await;
    check_widenings(&files, &events);
    let mut made = Vec::new();
    for (dir, config) in dirs.iter().zip(&configs) {
        assert_eq!(history(config), events, "both engines read one history");
        assert_no_dead_letters(dir.path(), &table);
        let log = std::fs::read_to_string(dir.path().join("engine.log")).expect("log");
        assert!(!log.contains("ERROR"), "{log}");
        made.push(log.matches("typed Parquet column").count());
    }
    eprintln!(
        "{} objects, {} changes recorded once; the engines made {made:?} of them",
        files.len(),
        events.len()
    );
}
