//! Reading a table's DynamoDB stream directly from DynamoDB Local, for
//! checking what the engine should have seen.

/// A DynamoDB Streams client for DynamoDB Local.
pub fn client() -> aws_sdk_dynamodbstreams::Client {
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
        .endpoint_url(super::endpoint())
        .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
            "local", "local", None, None, "tests",
        ))
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

/// Every record in `table`'s latest stream: its sequence number and the
/// partition key (`pk`, a string) of its item, shard by shard.
pub async fn records(table: &str) -> Vec<(u128, String)> {
    let streams = client();
    let arn = super::client()
        .await
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("describe the table")
        .table
        .and_then(|t| t.latest_stream_arn)
        .expect("a stream");
    let shards = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("describe the stream")
        .stream_description
        .and_then(|d| d.shards)
        .unwrap_or_default();
    let mut out = Vec::new();
    for shard in shards {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id.clone().unwrap_or_default())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("a shard iterator")
            .shard_iterator;
        while let Some(current) = iterator {
            let page = get_records(&current).await;
            let records = page["Records"].as_array().cloned().unwrap_or_default();
            if records.is_empty() {
                break;
            }
            out.extend(records.iter().filter_map(|record| {
                let change = &record["dynamodb"];
                let sequence = change["SequenceNumber"].as_str()?.parse().ok()?;
                let pk = change["Keys"]["pk"]["S"].as_str()?.to_owned();
                Some((sequence, pk))
            }));
            iterator = page["NextShardIterator"].as_str().map(str::to_owned);
        }
    }
    out
}

/// One GetRecords answer as JSON (the SDK cannot deserialize every value a
/// random workload writes).
async fn get_records(iterator: &str) -> serde_json::Value {
    let body = super::raw_call(
        "DynamoDBStreams_20120810.GetRecords",
        serde_json::json!({"ShardIterator": iterator}).to_string(),
    )
    .await;
    // The tests' poison records carry a lone surrogate escape, which
    // serde_json refuses: it is read as U+FFFD here.
    let body = body
        .replace("\\uD800", "\\uFFFD")
        .replace("\\ud800", "\\uFFFD");
    serde_json::from_str(&body).expect("GetRecords JSON")
}

/// The sequence number of the first stream record of item `pk` in
/// `table`'s stream.
pub async fn first_sequence(table: &str, pk: &str) -> u128 {
    records(table)
        .await
        .into_iter()
        .find(|(_, key)| key == pk)
        .map(|(sequence, _)| sequence)
        .unwrap_or_else(|| panic!("no stream record of {pk}"))
}
