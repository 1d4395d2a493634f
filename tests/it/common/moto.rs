//! moto server (S3 and SQS stand-in) access for tests; started by scripts/test.sh.

use std::collections::BTreeMap;
use std::io::Read;

use aws_sdk_sqs::Client;
use dynamo_cdc::decode::decode_item;
use dynamo_cdc::model::{canonical_item, Item};
use dynamo_cdc::sink::s3::ObjectNotice;

/// The moto server URL exported by scripts/test.sh.
pub fn url() -> String {
    std::env::var("DYNAMO_CDC_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!("DYNAMO_CDC_TEST_MOTO_URL is not set: run the tests with scripts/test.sh, which starts moto")
    })
}

/// An SQS client for moto.
pub fn sqs() -> Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .endpoint_url(url())
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "local", "local", None, None, "tests",
        ))
        .build();
    Client::from_conf(config)
}

/// Creates a bucket (moto accepts unsigned requests).
pub async fn create_bucket(bucket: &str) {
    let response = reqwest::Client::new()
        .put(format!("{}/{bucket}", url()))
        .send()
        .await
        .expect("reach moto");
    assert!(
        response.status().is_success(),
        "create bucket: {}",
        response.status()
    );
}

fn store(bucket: &str) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_endpoint(url())
        .with_allow_http(true)
        .with_access_key_id("local")
        .with_secret_access_key("local")
        .build()
        .expect("S3 client")
}

/// Writes an object.
/// Creates the SQS queue `name` and returns its URL.
pub async fn create_queue(name: &str) -> String {
    sqs()
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("queue url")
}

pub async fn put_object(bucket: &str, key: &str, body: &[u8]) {
    use object_store::ObjectStoreExt;
    store(bucket)
        .put(&object_store::path::Path::from(key), body.to_vec().into())
        .await
        .expect("put an object");
}

/// Reads an object's bytes.
pub async fn get_object(bucket: &str, key: &str) -> Vec<u8> {
    use object_store::ObjectStoreExt;
    store(bucket)
        .get(&object_store::path::Path::from(key))
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"))
        .bytes()
        .await
        .expect("body")
        .to_vec()
}

/// Keys under a prefix, sorted.
pub async fn list_keys(bucket: &str, prefix: &str) -> Vec<String> {
    use futures_util::TryStreamExt;
    use object_store::ObjectStore;
    let prefix = object_store::path::Path::from(prefix);
    let mut keys: Vec<String> = store(bucket)
        .list(Some(&prefix))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .expect("list");
    keys.sort();
    keys
}

/// Every message body in a queue (received and deleted), until it is empty.
pub async fn drain(client: &Client, queue_url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let output = client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        for message in messages {
            bodies.push(message.body.unwrap_or_default());
            if let Some(handle) = message.receipt_handle {
                client
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
}

/// Applies the announced objects' change events like a versioned state
/// table would: the highest sequence number per key wins.
pub async fn state_from_notices(notices: &[ObjectNotice]) -> BTreeMap<(String, String), Item> {
    let mut latest: BTreeMap<(String, String), (u128, Option<Item>)> = BTreeMap::new();
    for notice in notices {
        let body = get_object(&notice.bucket, &notice.key).await;
        let mut text = String::new();
        flate2::read::GzDecoder::new(body.as_slice())
            .read_to_string(&mut text)
            .expect("gzip");
        assert_eq!(text.lines().count(), notice.records, "{}", notice.key);
        for line in text.lines() {
            let event: serde_json::Value = serde_json::from_str(line).expect("event");
            let keys = decode_item(&event["keys"].to_string()).expect("keys");
            let key = super::key_of(&keys);
            let version: u128 = event["position"]["sequence"]
                .as_str()
                .expect("seq")
                .parse()
                .expect("digits");
            let item = match event.get("new_image") {
                Some(image) if event["op"] != "remove" => {
                    Some(decode_item(&image.to_string()).expect("image"))
                }
                _ => None,
            };
            let entry = latest.entry(key).or_insert((0, None));
            if version > entry.0 {
                *entry = (version, item);
            }
        }
    }
    latest
        .into_iter()
        .filter_map(|(key, (_, item))| item.map(|i| (key, canonical_item(&i))))
        .collect()
}
