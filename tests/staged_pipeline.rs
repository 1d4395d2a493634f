//! The staged pipeline against DynamoDB Local, moto (S3 + SQS) and
//! ClickHouse: engine → S3 objects + SQS notices → `load` with a Parquet
//! dimension join → ClickHouse state equals the table joined with the
//! dimension; a corrupt object is dead-lettered; a killed loader loses nothing.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use common::engine::{command, run_until_caught_up, write_config};
use dynamo_cdc::model::{AttributeValue, Item, Number};

/// A Parquet dimension keyed by `pk` for every other key of the workload.
fn write_dimension(path: &Path) -> BTreeMap<String, (String, i64)> {
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

fn loader_config(
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
        moto = common::moto::url(),
        dimension = dimension,
        clickhouse = common::clickhouse::url(),
    );
    let path = dir.join("loader.toml");
    std::fs::write(&path, text).expect("write loader config");
    path
}

/// The table's Scan as the loader should have shaped it: items keyed
/// `k001…` filtered out, `blobs` dropped, the dimension's columns added
/// where the key matches.
fn expected_state(
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

fn load_until_idle(config: &Path) -> std::process::Output {
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
struct Landed {
    client: aws_sdk_dynamodb::Client,
    table: String,
    bucket: String,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    dir: tempfile::TempDir,
}

async fn land(prefix: &str, ops: usize, seed: u64, sink_extra: &str) -> Landed {
    let client = common::client().await;
    let table = common::unique_table(prefix);
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 200, ops, seed, 4).await;
    let bucket = common::unique_table("landing").replace('_', "-");
    common::moto::create_bucket(&bucket).await;
    let sqs = common::moto::sqs();
    let queue_url = sqs
        .create_queue()
        .queue_name(&bucket)
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("queue url");
    let dir = tempfile::tempdir().expect("temp dir");
    let engine_config = write_config(
        dir.path(),
        &[&table],
        "batch_size = 50",
        &format!(
            "[[sinks]]\ntype = \"s3\"\nbucket = \"{bucket}\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\
             sqs_queue_url = \"{queue_url}\"\n{sink_extra}\n[sinks.batch]\nmax_records = 100\nmax_age = \"50ms\"\n",
            common::moto::url()
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

#[tokio::test(flavor = "multi_thread")]
async fn staged_pipeline_loads_enriched_state_and_survives_a_killed_loader() {
    let Landed {
        client,
        table,
        bucket,
        sqs,
        queue_url,
        dir,
    } = land("staged", 500, 61, "").await;

    // A corrupt object, announced like the others.
    let garbage_key = format!("{table}/dt=2026-01-01/shardId-x-1-2.jsonl.gz");
    let body = sqs_notice(&bucket, &garbage_key, &table);
    put_object(&bucket, &garbage_key, b"this is not gzip").await;
    sqs.send_message()
        .queue_url(&queue_url)
        .message_body(body)
        .send()
        .await
        .expect("send");

    let dimension_path = dir.path().join("customers.parquet");
    let dimension = write_dimension(&dimension_path);
    let database = common::clickhouse::unique_database("staged");
    let config = loader_config(
        dir.path(),
        &queue_url,
        &table,
        &database,
        &dimension_path.display().to_string(),
        "3s",
    );

    // The loader serves metrics and probes too.
    let port = common::observe::free_port();
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    std::fs::write(&config, text).expect("config");

    // A loader killed once rows arrive: its unfinished messages come back.
    let log = dir.path().join("loader.log");
    let mut loader = command(&["load", "--config", &config.display().to_string()])
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start the loader");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let tables = common::clickhouse::query(&format!(
            "SELECT count() FROM system.tables WHERE database = '{database}'"
        ))
        .await;
        if tables.trim() == "1"
            && common::clickhouse::query(&format!("SELECT count() FROM `{database}`.`{table}`"))
                .await
                .trim()
                != "0"
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the loader wrote nothing: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let (metrics, readyz) = (metrics.as_str(), format!("http://127.0.0.1:{port}/readyz"));
    let readyz = readyz.as_str();
    common::wait_for_async(
        "the loader's metrics to count written rows, and ready",
        Duration::from_secs(60),
        move || async move {
            let written = common::observe::get(metrics).await.and_then(|(_, body)| {
                dynamo_cdc::observe::exposition::sample(
                    &body,
                    "dynamo_cdc_sink_records_written_total",
                    &[("sink", "clickhouse")],
                )
            });
            let ready = common::observe::get(readyz).await.map(|(status, _)| status);
            written > Some(0.0) && ready == Some(200)
        },
    )
    .await;
    loader.kill().expect("SIGKILL");
    loader.wait().expect("reap");

    let config_clone = config.clone();
    tokio::task::spawn_blocking(move || load_until_idle(&config_clone))
        .await
        .expect("loader");
    let scan = common::scan(&client, &table).await;
    assert!(
        scan.keys().any(|key| key.0.starts_with("k001")),
        "the filter drops some items"
    );
    let expected = expected_state(scan, &dimension);
    assert!(expected.values().any(|i| i.contains_key("customer_name")));
    assert!(expected.values().any(|i| !i.contains_key("customer_name")));
    common::assert_same(
        &expected,
        &common::clickhouse::state(&database, &table).await,
    );

    // The corrupt object went to the dead-letter prefix with its reason.
    let dead = common::moto::list_keys(&bucket, "dead-letters/").await;
    assert!(
        dead.contains(&format!("dead-letters/{garbage_key}")),
        "{dead:?}"
    );
    let reason =
        common::moto::get_object(&bucket, &format!("dead-letters/{garbage_key}.reason.json")).await;
    let reason: serde_json::Value = serde_json::from_slice(&reason).expect("reason json");
    assert!(
        reason["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not gzipped")),
        "{reason}"
    );
    assert_eq!(
        common::moto::drain(&sqs, &queue_url).await.len(),
        0,
        "every message was deleted"
    );
}

fn sqs_notice(bucket: &str, key: &str, table: &str) -> String {
    serde_json::json!({
        "bucket": bucket, "key": key, "table": table, "shard": "shardId-x",
        "records": 1, "first_sequence": "1", "last_sequence": "2", "format": "jsonl.gz"
    })
    .to_string()
}

async fn put_object(bucket: &str, key: &str, body: &[u8]) {
    use object_store::ObjectStoreExt;
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_endpoint(common::moto::url())
        .with_allow_http(true)
        .with_access_key_id("local")
        .with_secret_access_key("local")
        .build()
        .expect("S3 client");
    store
        .put(&object_store::path::Path::from(key), body.to_vec().into())
        .await
        .expect("put");
}

#[tokio::test(flavor = "multi_thread")]
async fn parquet_objects_loaded_by_two_competing_loaders() {
    let Landed {
        client,
        table,
        bucket,
        sqs: _,
        queue_url,
        dir,
    } = land("staged_pq", 400, 62, "format = \"parquet\"").await;
    let keys = common::moto::list_keys(&bucket, &format!("{table}/")).await;
    assert!(
        keys.len() > 2 && keys.iter().all(|k| k.ends_with(".parquet")),
        "{keys:?}"
    );

    let dimension_path = dir.path().join("customers.parquet");
    let dimension = write_dimension(&dimension_path);
    let database = common::clickhouse::unique_database("staged");
    // This time the dimension table is read from S3.
    put_object(
        &bucket,
        "dimensions/customers.parquet",
        &std::fs::read(&dimension_path).expect("read"),
    )
    .await;
    let config = loader_config(
        dir.path(),
        &queue_url,
        &table,
        &database,
        &format!("s3://{bucket}/dimensions/customers.parquet"),
        "30s",
    );
    // Two loaders compete for the same queue.
    let first = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || load_until_idle(&config))
    };
    let second = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || load_until_idle(&config))
    };
    first.await.expect("first loader");
    second.await.expect("second loader");
    let expected = expected_state(common::scan(&client, &table).await, &dimension);
    common::assert_same(
        &expected,
        &common::clickhouse::state(&database, &table).await,
    );
}
