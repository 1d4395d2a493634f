//! moto server (S3 and SQS stand-in) access for tests; started by scripts/test.sh.

use aws_sdk_sqs::Client;

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
