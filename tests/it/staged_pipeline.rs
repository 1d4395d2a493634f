//! The staged pipeline against DynamoDB Local, moto (S3 + SQS) and
//! ClickHouse: engine → S3 objects + SQS notices → `load` with a Parquet
//! dimension join → ClickHouse state equals the table joined with the
//! dimension; a corrupt object is dead-lettered; a killed loader loses nothing.

use crate::common;

use std::time::Duration;

use common::engine::command;
use common::staged::{
    expected_state, land, load_until_idle, loader_config, sqs_notice, write_dimension, Landed,
};

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
    common::moto::put_object(&bucket, &garbage_key, b"this is not gzip").await;
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
    common::wait_for_async(
        common::WithLog("the loader to write rows", &log),
        Duration::from_secs(60),
        || async {
            let tables = common::clickhouse::query(&format!(
                "SELECT count() FROM system.tables WHERE database = '{database}'"
            ))
            .await;
            tables.trim() == "1"
                && common::clickhouse::query(&format!("SELECT count() FROM `{database}`.`{table}`"))
                    .await
                    .trim()
                    != "0"
        },
    )
    .await;
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
    common::moto::put_object(
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
