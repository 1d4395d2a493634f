//! Kinesis Data Streams access for tests (kinesalite, started by
//! scripts/test.sh): stream and shard administration, reading a stream back,
//! and the [`Forwarder`] that feeds a DynamoDB Local table's stream into a
//! Kinesis stream in the record format of a Kinesis streaming destination.
//!
//! kinesalite accepts stream *names* only (no ARNs), returns every shard
//! (closed ones included) from ListShards whatever the filter, and ends a
//! closed shard with an empty GetRecords page without a next iterator (no
//! `ChildShards`).

mod ddb_stream;
mod forwarder;
pub mod pipeline;
mod record_format;

use std::time::Duration;

use aws_sdk_kinesis::types::{Record, Shard, ShardIteratorType, StreamStatus};
use aws_sdk_kinesis::Client;

// Test binaries that do not forward would warn about the re-export.
#[allow(unused_imports)]
pub use forwarder::{Forwarder, ForwarderOptions};

/// How long stream operations may take to settle on kinesalite.
const SETTLE: Duration = Duration::from_secs(30);

/// One shard as ListShards reports it.
pub type ShardLineage = (String, Option<String>, Option<String>, bool);

/// The kinesalite endpoint exported by scripts/test.sh.
pub fn endpoint() -> String {
    std::env::var("DYNAMO_CDC_TEST_KINESIS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "DYNAMO_CDC_TEST_KINESIS_ENDPOINT is not set: run the tests with scripts/test.sh, \
             which installs and starts kinesalite"
        )
    })
}

/// A Kinesis client for kinesalite.
pub fn client() -> Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "local", "local", None, None, "tests",
        ))
        .build();
    Client::from_conf(config)
}

/// A stream name unique to this test run.
pub fn unique_stream(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), fastrand::u32(..))
}

/// Creates a stream of `shards` shards and waits until it is ACTIVE.
pub async fn create_stream(client: &Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create stream {name}: {e:?}"));
    wait_active(client, name).await;
}

/// Waits until the stream is ACTIVE (after a create, split or merge).
pub async fn wait_active(client: &Client, name: &str) {
    let what = format!("stream {name} to be ACTIVE");
    super::wait_for_async(&what, SETTLE, || async {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describe stream {name}: {e:?}"));
        summary
            .stream_description_summary
            .is_some_and(|s| s.stream_status == StreamStatus::Active)
    })
    .await;
}

/// Every shard of the stream, closed ones included (kinesalite returns all
/// of them in one page; further pages are followed for other servers).
pub async fn shards(client: &Client, stream: &str) -> Vec<Shard> {
    let mut out = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let request = match &next_token {
            Some(token) => client.list_shards().next_token(token),
            None => client.list_shards().stream_name(stream),
        };
        let page = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("list shards of {stream}: {e:?}"));
        out.extend(page.shards.unwrap_or_default());
        next_token = page.next_token;
        if next_token.is_none() {
            return out;
        }
    }
}

/// (shard id, parent, adjacent parent, open?) of every shard of the stream.
pub async fn list_shards(client: &Client, stream: &str) -> Vec<ShardLineage> {
    shards(client, stream)
        .await
        .into_iter()
        .map(|shard| {
            let open = shard
                .sequence_number_range
                .as_ref()
                .is_none_or(|range| range.ending_sequence_number.is_none());
            (
                shard.shard_id,
                shard.parent_shard_id,
                shard.adjacent_parent_shard_id,
                open,
            )
        })
        .collect()
}

/// The hash key in the middle of `[start, end]` (decimal strings): the
/// first hash key of the upper child of a split.
pub fn midpoint_hash_key(start: &str, end: &str) -> String {
    let start: u128 = start
        .parse()
        .expect("starting hash key is a 128-bit integer");
    let end: u128 = end.parse().expect("ending hash key is a 128-bit integer");
    assert!(
        end > start,
        "a one-key hash range [{start}, {end}] cannot be split"
    );
    (start + (end - start) / 2 + 1).to_string()
}

/// Splits `shard_id` at the middle of its hash key range and waits until the
/// stream is ACTIVE again.
pub async fn split_shard(client: &Client, stream: &str, shard_id: &str) {
    let shard = shards(client, stream)
        .await
        .into_iter()
        .find(|shard| shard.shard_id == shard_id)
        .unwrap_or_else(|| panic!("no shard {shard_id} in {stream}"));
    let range = shard
        .hash_key_range
        .unwrap_or_else(|| panic!("shard {shard_id} has no hash key range"));
    client
        .split_shard()
        .stream_name(stream)
        .shard_to_split(shard_id)
        .new_starting_hash_key(midpoint_hash_key(
            &range.starting_hash_key,
            &range.ending_hash_key,
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("split {shard_id} of {stream}: {e:?}"));
    wait_active(client, stream).await;
}

/// Merges the adjacent shards `a` and `b` and waits until the stream is
/// ACTIVE again.
pub async fn merge_shards(client: &Client, stream: &str, a: &str, b: &str) {
    client
        .merge_shards()
        .stream_name(stream)
        .shard_to_merge(a)
        .adjacent_shard_to_merge(b)
        .send()
        .await
        .unwrap_or_else(|e| panic!("merge {a} and {b} of {stream}: {e:?}"));
    wait_active(client, stream).await;
}

/// Every record of one shard from TRIM_HORIZON to its current end (an
/// empty page, or no next iterator for a closed shard).
pub async fn read_shard(client: &Client, stream: &str, shard_id: &str) -> Vec<Record> {
    let mut iterator = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_or_else(|e| panic!("shard iterator for {shard_id} of {stream}: {e:?}"))
        .shard_iterator;
    let mut records = Vec::new();
    while let Some(current) = iterator {
        let page = client
            .get_records()
            .shard_iterator(current)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get records of {shard_id} of {stream}: {e:?}"));
        if page.records.is_empty() {
            break;
        }
        records.extend(page.records);
        iterator = page.next_shard_iterator;
    }
    records
}

/// Every record of the stream, shard by shard (in ListShards order), each
/// shard's records in their sequence order.
pub async fn read_all(client: &Client, stream: &str) -> Vec<(String, Vec<Record>)> {
    let mut out = Vec::new();
    for shard in shards(client, stream).await {
        let records = read_shard(client, stream, &shard.shard_id).await;
        out.push((shard.shard_id, records));
    }
    out
}
