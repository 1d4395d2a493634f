//! Shared helpers of the integration tests: DynamoDB Local access, random
//! workloads, replica reading, the engine binary. The servers are started by
//! `scripts/test.sh`, which exports their addresses.

#![allow(dead_code)]

pub mod bulk;
pub mod clickhouse;
pub mod engine;
pub mod enrichment;
pub mod es_index;
pub mod evolving;
pub mod fault_proxy;
pub mod fleet;
pub mod http_fault;
pub mod kafka;
pub mod kafka_compare;
pub mod kinesis;
pub mod moto;
pub mod observe;
pub mod opensearch;
pub mod outage;
pub mod postgres;
pub mod staged;
pub mod streams;
pub mod tcp_proxy;
pub mod typed;
pub mod typed_sinks;
pub mod values;
pub mod workload;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use aws_sdk_dynamodb::Client;
use dynamo_cdc::model::{canonical_item, Item};

/// The DynamoDB Local endpoint exported by scripts/test.sh.
pub fn endpoint() -> String {
    std::env::var("DYNAMO_CDC_TEST_DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "DYNAMO_CDC_TEST_DYNAMODB_ENDPOINT is not set: run the tests with scripts/test.sh, \
             which installs and starts DynamoDB Local"
        )
    })
}

/// A DynamoDB client for DynamoDB Local.
pub async fn client() -> Client {
    client_in(SHARED_DATABASE).await
}

/// The access key of the DynamoDB Local database most tests share.
pub const SHARED_DATABASE: &str = "local";

/// A DynamoDB Local database of the calling test's own, named by the access
/// key that selects it: DynamoDB Local keeps one database per access key, so
/// a test that loads a large table neither queues behind every other test's
/// writes and stream records nor slows them. Use it with [`client_in`] and
/// `engine::{command_in, run_until_caught_up_in}`.
pub fn own_database(prefix: &str) -> String {
    // DynamoDB Local accepts access keys of letters and digits only.
    assert!(
        prefix.chars().all(|c| c.is_ascii_alphanumeric()),
        "{prefix}"
    );
    format!("{prefix}{}x{}", std::process::id(), fastrand::u32(..))
}

/// A client of DynamoDB Local's database `database` (an access key; see
/// [`own_database`]).
pub async fn client_in(database: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            database, "local", None, None, "tests",
        ))
        .build();
    Client::from_conf(config)
}

/// A table name unique to this test run.
pub fn unique_table(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), fastrand::u32(..))
}

/// Creates a table keyed by `pk` (S) and `sk` (N) with a NEW_AND_OLD_IMAGES stream.
pub async fn create_table(client: &Client, name: &str) {
    create_table_with_view(client, name, StreamViewType::NewAndOldImages).await;
}

/// Creates a table keyed by `pk` (S) and `sk` (N) with a stream of `view`.
pub async fn create_table_with_view(client: &Client, name: &str, view: StreamViewType) {
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition"),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .expect("attribute definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("key schema"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .expect("key schema"),
        )
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(view)
                .build()
                .expect("stream specification"),
        )
        .send()
        .await
        .expect("create table");
}

/// The (pk, sk) text of an item.
pub fn key_of(item: &Item) -> (String, String) {
    let text = |name: &str| match item.get(name) {
        Some(dynamo_cdc::model::AttributeValue::S(s)) => s.clone(),
        Some(dynamo_cdc::model::AttributeValue::N(n)) => n.as_str().to_owned(),
        other => panic!("key {name} is {other:?}"),
    };
    (text("pk"), text("sk"))
}

/// Every item of a table, canonical (sets sorted), by key.
pub async fn scan(client: &Client, table: &str) -> BTreeMap<(String, String), Item> {
    let mut out = BTreeMap::new();
    let mut pages = client
        .scan()
        .table_name(table)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        let item = values::from_sdk_item(item.expect("scan"));
        out.insert(key_of(&item), canonical_item(&item));
    }
    out
}

/// The live rows of a SQLite replica table, canonical, by key.
pub fn replica(path: &std::path::Path, table: &str) -> BTreeMap<(String, String), Item> {
    replica_if_present(path, table)
        .unwrap_or_else(|| panic!("no replica of {table} in {}", path.display()))
}

/// Like [`replica`], or `None` while the replica's table does not exist yet.
pub fn replica_if_present(
    path: &std::path::Path,
    table: &str,
) -> Option<BTreeMap<(String, String), Item>> {
    let conn = rusqlite::Connection::open(path).expect("open replica");
    let mut stmt = conn
        .prepare(&format!("SELECT pk, sk, _item FROM \"{table}_live\""))
        .ok()?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .expect("rows");
    let mut out = BTreeMap::new();
    for row in rows {
        let (pk, sk, json) = row.expect("row");
        let item = dynamo_cdc::decode::decode_item(&json).expect("replica item decodes");
        out.insert((pk, sk), canonical_item(&item));
    }
    Some(out)
}

/// Asserts that two table copies are equal, naming the first differences.
pub fn assert_same(
    expected: &BTreeMap<(String, String), Item>,
    actual: &BTreeMap<(String, String), Item>,
) {
    let mut problems = Vec::new();
    for (key, item) in expected {
        match actual.get(key) {
            None => problems.push(format!("{key:?} missing from the replica")),
            Some(other) if other != item => problems.push(format!(
                "{key:?} differs:\n  table:   {item:?}\n  replica: {other:?}"
            )),
            Some(_) => {}
        }
    }
    for key in actual.keys() {
        if !expected.contains_key(key) {
            problems.push(format!("{key:?} is in the replica but not in the table"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} items differ; first ones:\n{}",
        problems.len(),
        expected.len(),
        problems
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
pub fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `child` exits (at most `timeout`) and returns its status.
pub fn wait_for_exit(
    child: &mut std::process::Child,
    timeout: Duration,
) -> std::process::ExitStatus {
    let mut status = None;
    wait_for("the process to exit", timeout, || {
        status = child.try_wait().expect("process status");
        status.is_some()
    });
    status.expect("an exit status")
}

/// Polls the async `condition` every 50 ms until it holds or `timeout` passes
/// (the async twin of [`wait_for`], for conditions that call services).
/// `what` is anything displayable: [`WithLog`] adds a log's text to the
/// timeout's message.
pub async fn wait_for_async<F, Fut>(
    what: impl std::fmt::Display,
    timeout: Duration,
    mut condition: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A wait's description followed by the text of a log (an engine's), read
/// only when displayed: `wait_for_async(WithLog("rows", &log), …)` shows the
/// log when the wait times out.
pub struct WithLog<'a>(pub &'a str, pub &'a std::path::Path);

impl std::fmt::Display for WithLog<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = std::fs::read_to_string(self.1).unwrap_or_default();
        write!(f, "{} ({}):\n{text}", self.0, self.1.display())
    }
}

/// Calls DynamoDB Local's HTTP API with operation `target` (e.g.
/// `DynamoDB_20120810.PutItem`) and a JSON body, without the SDK (whose
/// strings cannot hold a lone surrogate, and which cannot read every value
/// back); DynamoDB Local checks no signature. Panics unless it answers 2xx;
/// returns the answer's body.
pub async fn raw_call(target: &str, body: String) -> String {
    let response = reqwest::Client::new()
        .post(endpoint())
        .header("X-Amz-Target", target)
        .header("Content-Type", "application/x-amz-json-1.0")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=host, Signature=00",
        )
        .body(body)
        .send()
        .await
        .expect("reach DynamoDB Local");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{target}: {status} {text:.300}");
    text
}

/// Puts an item given as DynamoDB JSON through [`raw_call`].
pub async fn raw_put_item(table: &str, item_json: &str) {
    let body = format!("{{\"TableName\":\"{table}\",\"Item\":{item_json}}}");
    raw_call("DynamoDB_20120810.PutItem", body).await;
}

/// Puts `item` into `table`.
pub async fn put_item(client: &Client, table: &str, item: &Item) {
    client
        .put_item()
        .table_name(table)
        .set_item(Some(values::to_sdk_item(item)))
        .send()
        .await
        .expect("put an item");
}

/// Puts items `<prefix>0` … `<prefix>{count-1}` (sort key 1, one INSERT
/// change each) holding their number `n` and, when `payload_bytes` > 0, a
/// string `payload` of that many bytes.
pub async fn put_items(
    client: &Client,
    table: &str,
    prefix: &str,
    count: usize,
    payload_bytes: usize,
) {
    use aws_sdk_dynamodb::types::AttributeValue;
    for n in 0..count {
        let mut request = client
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S(format!("{prefix}{n}")))
            .item("sk", AttributeValue::N("1".into()))
            .item("n", AttributeValue::N(n.to_string()));
        if payload_bytes > 0 {
            request = request.item("payload", AttributeValue::S("x".repeat(payload_bytes)));
        }
        request.send().await.expect("put an item");
    }
}

/// Sequence numbers of the whole lines in the JSON Lines files under `dir`,
/// files in name order (a line torn by a kill is no event).
pub fn jsonl_sequences(dir: &std::path::Path) -> Vec<u128> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        out.extend(text.lines().filter_map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).ok()?;
            event["position"]["sequence"].as_str()?.parse::<u128>().ok()
        }));
    }
    out
}

/// Turns the table's stream on (a new stream, NEW_AND_OLD_IMAGES) or off.
pub async fn set_stream(client: &aws_sdk_dynamodb::Client, table: &str, enabled: bool) {
    use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
    let spec = if enabled {
        StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::NewAndOldImages)
            .build()
    } else {
        StreamSpecification::builder().stream_enabled(false).build()
    }
    .expect("stream specification");
    client
        .update_table()
        .table_name(table)
        .stream_specification(spec)
        .send()
        .await
        .expect("update the table's stream");
}
