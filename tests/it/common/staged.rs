//! The staged pipeline's pieces for tests: a workload landed by the engine
//! as S3 objects with SQS notices, a Parquet dimension, a `load` config that
//! filters, transforms and joins it into ClickHouse, and the state that
//! load should converge to.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use dynamo_cdc::model::{AttributeValue, Item, Number};

use super::engine::{command, run_until_caught_up, write_config};

/// A Parquet dimension keyed by `pk` for every other key of the workload.
pub fn write_dimension(path: &Path) -> BTreeMap<String, (String, i64)> {
    let rows: BTreeMap<String, (String, i64)> = (0..200)
        .step_by(2)
        .map(|i| {
            (
                format!("k{i:04}"),
                (format!("Customer {i}"), i64::from(i % 3)),
            )
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("pk", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("tier", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from_iter_values(rows.keys())),
            Arc::new(StringArray::from_iter_values(
                rows.values().map(|v| v.0.clone()),
            )),
            Arc::new(Int64Array::from_iter_values(rows.values().map(|v| v.1))),
        ],
    )
    .expect("batch");
    let file = std::fs::File::create(path).expect("create parquet");
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    rows
}

pub fn loader_config(
    dir: &Path,
    queue_url: &str,
    table: &str,
    database: &str,
    dimension: &str,
    visibility: &str,
) -> std::path::PathBuf {
    let text = format!(
        "state_dir = \"{state}\"\n\n[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{moto}\"\n\n\
         [queue]\nurl = \"{queue_url}\"\nwait_time = \"1s\"\nvisibility_timeout = \"{visibility}\"\n\n\
         [[tables]]\nname = \"{table}\"\nkeys = [{{ name = \"pk\", type = \"S\" }}, {{ name = \"sk\", type = \"N\" }}]\n\
         filters = ['{{\"dynamodb\": {{\"Keys\": {{\"pk\": {{\"S\": [{{\"anything-but\": {{\"prefix\": \"k001\"}}}}]}}}}}}}}']\n\n\
         [[transforms]]\ntype = \"drop\"\nattributes = [\"blobs\"]\n\n\
         [enrich]\npath = \"{dimension}\"\nkey = \"pk\"\nfield = \"pk\"\ncolumns = [\"name\", \"tier\"]\nprefix = \"customer_\"\n\n\
         [[sinks]]\ntype = \"clickhouse\"\nurl = \"{clickhouse}\"\ndatabase = \"{database}\"\ncreate_table = true\n",
        state = dir.join("loader-state").display(),
        moto = super::moto::url(),
        dimension = dimension,
        clickhouse = super::clickhouse::url(),
    );
    let path = dir.join("loader.toml");
    std::fs::write(&path, text).expect("write loader config");
    path
}

/// The table's Scan as the loader should have shaped it: items keyed
/// `k001…` filtered out, `blobs` dropped, the dimension's columns added
/// where the key matches.
pub fn expected_state(
    scan: BTreeMap<(String, String), Item>,
    dimension: &BTreeMap<String, (String, i64)>,
) -> BTreeMap<(String, String), Item> {
    scan.into_iter()
        .filter(|(key, _)| !key.0.starts_with("k001"))
        .map(|(key, mut item)| {
            item.remove("blobs");
            if let Some((name, tier)) = dimension.get(&key.0) {
                item.insert("customer_name".into(), AttributeValue::S(name.clone()));
                item.insert(
                    "customer_tier".into(),
                    AttributeValue::N(Number::parse(&tier.to_string()).expect("int")),
                );
            }
            (key, item)
        })
        .collect()
}

pub fn load_until_idle(config: &Path) -> std::process::Output {
    let output = command(&[
        "load",
        "--config",
        &config.display().to_string(),
        "--exit-when-idle",
    ])
    .output()
    .expect("run the loader");
    assert!(
        output.status.success(),
        "loader failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A table with a random workload, landed by the engine in a fresh bucket
/// with notices on a fresh queue.
pub struct Landed {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    pub bucket: String,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub dir: tempfile::TempDir,
}

/// `ops` random operations (seeded) on a new table, landed by the engine's
/// `s3` sink (extra sink lines `sink_extra`) in objects of up to 100 changes.
pub async fn land(prefix: &str, ops: usize, seed: u64, sink_extra: &str) -> Landed {
    land_in_objects_of(prefix, ops, seed, sink_extra, 100).await
}

/// [`land`] with objects of up to `records_per_object` changes (the engine
/// reads pages of at most that many records too: a sink batch holds whole
/// pages).
pub async fn land_in_objects_of(
    prefix: &str,
    ops: usize,
    seed: u64,
    sink_extra: &str,
    records_per_object: usize,
) -> Landed {
    let client = super::client().await;
    let table = super::unique_table(prefix);
    super::create_table(&client, &table).await;
    super::workload::run(&client, &table, 200, ops, seed, 4).await;
    let bucket = super::unique_table("landing").replace('_', "-");
    super::moto::create_bucket(&bucket).await;
    let sqs = super::moto::sqs();
    let queue_url = super::moto::create_queue(&bucket).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let engine_config = write_config(
        dir.path(),
        &[&table],
        &format!("batch_size = {}", records_per_object.min(50)),
        &format!(
            "[[sinks]]\ntype = \"s3\"\nbucket = \"{bucket}\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\
             sqs_queue_url = \"{queue_url}\"\n{sink_extra}\n[sinks.batch]\nmax_records = {records_per_object}\nmax_age = \"50ms\"\n",
            super::moto::url()
        ),
    );
    tokio::task::spawn_blocking(move || run_until_caught_up(&engine_config))
        .await
        .expect("engine");
    Landed {
        client,
        table,
        bucket,
        sqs,
        queue_url,
        dir,
    }
}

/// An SQS notice announcing a one-record JSON Lines object `key`.
pub fn sqs_notice(bucket: &str, key: &str, table: &str) -> String {
    serde_json::json!({
        "bucket": bucket, "key": key, "table": table, "shard": "shardId-x",
        "records": 1, "first_sequence": "1", "last_sequence": "2", "format": "jsonl.gz"
    })
    .to_string()
}
