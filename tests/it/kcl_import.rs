//! `dynamo-cdc checkpoints import` against DynamoDB Local: a lease table in
//! KCL's shape, built by hand at a known checkpoint, is imported, and the
//! engine then reads exactly the records after it.

use crate::common;

use std::io::BufRead;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use common::engine::{command, records_read, run_until_caught_up, write_config};

/// The stream's shard id and every record's sequence number, in order.
async fn stream_sequences(client: &aws_sdk_dynamodb::Client, table: &str) -> (String, Vec<String>) {
    let arn = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("describe")
        .table
        .and_then(|t| t.latest_stream_arn)
        .expect("a stream");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(common::endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let streams = aws_sdk_dynamodbstreams::Client::new(&config);
    let description = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("describe stream");
    let shard = description
        .stream_description
        .and_then(|d| d.shards)
        .and_then(|s| s.into_iter().next())
        .and_then(|s| s.shard_id)
        .expect("a shard");
    let mut iterator = streams
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(&shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator")
        .shard_iterator;
    let mut sequences = Vec::new();
    while let Some(current) = iterator.take() {
        let page = streams
            .get_records()
            .shard_iterator(current)
            .send()
            .await
            .expect("records");
        let records = page.records.unwrap_or_default();
        if records.is_empty() {
            break;
        }
        sequences.extend(
            records
                .into_iter()
                .filter_map(|r| r.dynamodb.and_then(|d| d.sequence_number)),
        );
        iterator = page.next_shard_iterator;
    }
    (shard, sequences)
}

async fn kcl_lease_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    shard: &str,
    checkpoint: &str,
) {
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("leaseKey")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("leaseKey")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create the KCL table");
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let n = |v: u64| AttributeValue::N(v.to_string());
    client
        .put_item()
        .table_name(name)
        .item("leaseKey", s(shard))
        .item("leaseOwner", s("kcl-worker-1"))
        .item("leaseCounter", n(42))
        .item("checkpoint", s(checkpoint))
        .item("checkpointSubSequenceNumber", n(0))
        .item("ownerSwitchesSinceCheckpoint", n(0))
        .send()
        .await
        .expect("write a KCL lease");
}

#[tokio::test(flavor = "multi_thread")]
async fn reading_resumes_right_after_the_kcl_checkpoint() {
    let client = common::client().await;
    let table = common::unique_table("kcl");
    common::create_table(&client, &table).await;
    // Plain items: the SDK's stream client refuses DynamoDB Local's bare `{}`.
    for index in 0..30 {
        client
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(format!("k{index:03}")))
            .item("sk", AttributeValue::N("1".into()))
            .item("n", AttributeValue::N(index.to_string()))
            .send()
            .await
            .expect("put");
    }
    let (shard, sequences) = stream_sequences(&client, &table).await;
    assert!(sequences.len() >= 20, "{} records", sequences.len());
    let checkpoint = sequences[9].clone();
    let kcl_table = common::unique_table("kcl_app");
    kcl_lease_table(&client, &kcl_table, &shard, &checkpoint).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let changes = dir.path().join("changes");
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &format!(
            "[[sinks]]\ntype = \"jsonl\"\ndir = \"{}\"\n",
            changes.display()
        ),
    );
    let imported = command(&[
        "checkpoints",
        "import",
        "--config",
        &config.display().to_string(),
        "--kcl-table",
        &kcl_table,
        "--table",
        &table,
    ])
    .output()
    .expect("import");
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(String::from_utf8_lossy(&imported.stdout).contains("imported 1 checkpoint(s)"));

    let output = run_until_caught_up(&config);
    assert_eq!(records_read(&output), (sequences.len() - 10) as u64);
    let mut read = Vec::new();
    for entry in std::fs::read_dir(changes.join(&table))
        .expect("jsonl dir")
        .flatten()
    {
        let file = std::fs::File::open(entry.path()).expect("open");
        for line in std::io::BufReader::new(file).lines() {
            let event: serde_json::Value =
                serde_json::from_str(&line.expect("line")).expect("json");
            read.push(
                event["position"]["sequence"]
                    .as_str()
                    .expect("sequence")
                    .to_owned(),
            );
        }
    }
    assert_eq!(
        read,
        sequences[10..],
        "reading starts right after the KCL checkpoint"
    );
}
