//! Against DynamoDB Local and moto (S3 + SQS): batches land as gzipped JSON
//! Lines objects with one SQS notice each; a crash between the S3 put and the
//! SQS send loses nothing and the replay overwrites the same object.

use crate::common;

use std::time::Duration;

use common::engine::{records_read, run_until_caught_up, spawn, write_config};
use dynamo_cdc::sink::s3::ObjectNotice;

fn s3_sink(bucket: &str, queue_url: &str) -> String {
    format!(
        "[[sinks]]\ntype = \"s3\"\nbucket = \"{bucket}\"\nprefix = \"landing/\"\nregion = \"us-east-1\"\n\
         endpoint_url = \"{}\"\nsqs_queue_url = \"{queue_url}\"\n[sinks.batch]\nmax_age = \"2s\"\n",
        common::moto::url()
    )
}

fn parse_notices(bodies: &[String]) -> Vec<ObjectNotice> {
    bodies
        .iter()
        .map(|b| serde_json::from_str(b).expect("notice json"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_land_in_s3_with_one_notice_each() {
    let client = common::client().await;
    let table = common::unique_table("s3_land");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 60, 300, 51, 3).await;
    let bucket = common::unique_table("bucket").replace('_', "-");
    common::moto::create_bucket(&bucket).await;
    let sqs = common::moto::sqs();
    let queue = sqs
        .create_queue()
        .queue_name(&bucket)
        .send()
        .await
        .expect("queue");
    let queue_url = queue.queue_url.expect("queue url");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &[&table],
        "batch_size = 100",
        &s3_sink(&bucket, &queue_url),
    );
    let output = tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");

    let notices = parse_notices(&common::moto::drain(&sqs, &queue_url).await);
    assert!(!notices.is_empty());
    let total: usize = notices.iter().map(|n| n.records).sum();
    assert_eq!(total as u64, records_read(&output));
    let mut keys = common::moto::list_keys(&bucket, "landing/").await;
    keys.sort();
    let mut announced: Vec<String> = notices.iter().map(|n| n.key.clone()).collect();
    announced.sort();
    assert_eq!(keys, announced, "every object is announced exactly once");
    for notice in &notices {
        assert!(
            notice.key.starts_with(&format!("landing/{table}/dt=")),
            "{}",
            notice.key
        );
        assert!(notice.key.ends_with(&format!(
            "{}-{}.jsonl.gz",
            notice.first_sequence, notice.last_sequence
        )));
        assert_eq!(notice.format, "jsonl.gz");
    }
    common::assert_same(
        &common::scan(&client, &table).await,
        &common::moto::state_from_notices(&notices).await,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_between_put_and_notice_loses_nothing() {
    let client = common::client().await;
    let table = common::unique_table("s3_crash");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 40, 200, 52, 2).await;
    let bucket = common::unique_table("bucket").replace('_', "-");
    common::moto::create_bucket(&bucket).await;
    let sqs = common::moto::sqs();
    // The queue does not exist yet: every notice fails after the object is written.
    let queue_name = format!("{bucket}-q");
    let queue_url = format!("{}/123456789012/{queue_name}", common::moto::url());
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &[&table], "", &s3_sink(&bucket, &queue_url));
    let log = dir.path().join("engine.log");
    let mut engine = spawn(&config, &log);
    common::wait_for_async(
        common::WithLog("an object and a failed notice", &log),
        Duration::from_secs(60),
        || async {
            let objects = common::moto::list_keys(&bucket, "landing/").await;
            !objects.is_empty()
                && std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("SQS notice")
        },
    )
    .await;
    engine.kill().expect("SIGKILL");
    engine.wait().expect("reap");
    let orphans = common::moto::list_keys(&bucket, "landing/").await;
    assert!(
        !dir.path().join("state/checkpoints.db").exists() || {
            let conn =
                rusqlite::Connection::open(dir.path().join("state/checkpoints.db")).expect("open");
            conn.query_row(
                "SELECT count(*) FROM checkpoints WHERE sequence IS NOT NULL",
                [],
                |r| r.get::<_, i64>(0),
            )
            .expect("count")
                == 0
        },
        "no checkpoint may pass an unannounced object"
    );

    sqs.create_queue()
        .queue_name(&queue_name)
        .send()
        .await
        .expect("queue");
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let notices = parse_notices(&common::moto::drain(&sqs, &queue_url).await);
    let keys = common::moto::list_keys(&bucket, "landing/").await;
    assert_eq!(
        keys, orphans,
        "the replay rewrote the same objects instead of adding new ones"
    );
    let mut announced: Vec<String> = notices.iter().map(|n| n.key.clone()).collect();
    announced.sort();
    assert_eq!(announced, keys);
    common::assert_same(
        &common::scan(&client, &table).await,
        &common::moto::state_from_notices(&notices).await,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn parquet_objects_carry_typed_columns_and_reject_what_does_not_fit() {
    use arrow_array::cast::AsArray;
    use aws_sdk_dynamodb::types::AttributeValue as Sdk;
    let client = common::client().await;
    let table = common::unique_table("s3_pq");
    common::create_table(&client, &table).await;
    for (pk, amount) in [
        ("good-1", Sdk::N("12.5".into())),
        ("bad", Sdk::S("twelve".into())),
        ("good-2", Sdk::N("-0.25".into())),
    ] {
        client
            .put_item()
            .table_name(&table)
            .item("pk", Sdk::S(pk.into()))
            .item("sk", Sdk::N("1".into()))
            .item("amount", amount)
            .send()
            .await
            .expect("put");
    }
    let bucket = common::unique_table("bucket").replace('_', "-");
    common::moto::create_bucket(&bucket).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = format!(
        "[[sinks]]\ntype = \"s3\"\nbucket = \"{bucket}\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\nformat = \"parquet\"\n\
         [[sinks.columns]]\nname = \"amount\"\ntype = \"Decimal(16, 2)\"\n[[sinks.columns]]\nname = \"note\"\ntype = \"Nullable(String)\"\n",
        common::moto::url()
    );
    let config = write_config(dir.path(), &[&table], "", &sink);
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let keys = common::moto::list_keys(&bucket, &format!("{table}/")).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let body = common::moto::get_object(&bucket, &keys[0]).await;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(body),
    )
    .expect("parquet")
    .build()
    .expect("reader");
    let mut amounts = Vec::new();
    for batch in reader {
        let batch = batch.expect("batch");
        let amount = batch.column_by_name("amount").expect("amount column");
        let amount = amount.as_primitive::<arrow_array::types::Decimal128Type>();
        let note = batch.column_by_name("note").expect("note column");
        assert_eq!(note.null_count(), batch.num_rows());
        for row in 0..batch.num_rows() {
            amounts.push(amount.value_as_string(row));
        }
    }
    amounts.sort();
    assert_eq!(amounts, ["-0.25", "12.50"]);
    let letters =
        std::fs::read_to_string(dir.path().join(format!("state/dead-letters/{table}.jsonl")))
            .expect("dead letters");
    assert_eq!(letters.lines().count(), 1);
    assert!(
        letters.contains("a S value does not fit a Decimal(16, 2) column"),
        "{letters}"
    );
}
