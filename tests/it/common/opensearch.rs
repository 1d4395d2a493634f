//! OpenSearch API access for tests (osmem-server, an in-memory OpenSearch; started by scripts/test.sh).

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};

/// The OpenSearch URL (`http://127.0.0.1:PORT`) exported by scripts/test.sh.
pub fn url() -> String {
    std::env::var("DYNAMO_CDC_TEST_OPENSEARCH_URL").unwrap_or_else(|_| {
        panic!(
            "DYNAMO_CDC_TEST_OPENSEARCH_URL is not set: run the tests with scripts/test.sh, \
             which starts osmem-server"
        )
    })
}

/// An index name unique to this test run: `prefix` (lower case, as index
/// names must be) with the process id and a random number.
pub fn unique_index(prefix: &str) -> String {
    format!(
        "{}-{}-{}",
        prefix.to_ascii_lowercase(),
        std::process::id(),
        fastrand::u32(..)
    )
}

/// `url()` with `segments` appended as percent-encoded path segments, so
/// document ids may hold `/`, `#`, `?` or spaces.
fn endpoint(segments: &[&str]) -> Url {
    let mut url = Url::parse(&url()).expect("DYNAMO_CDC_TEST_OPENSEARCH_URL is a URL");
    url.path_segments_mut()
        .expect("a base URL")
        .pop_if_empty()
        .extend(segments);
    url
}

/// Sends one request (with a JSON body when given) and returns the status
/// and the decoded JSON answer (`Value::Null` for an empty or non-JSON one).
/// A fresh client per call: each `#[tokio::test]` has its own runtime.
async fn call(method: Method, url: Url, body: Option<&Value>) -> (StatusCode, Value) {
    let what = format!("{method} {url}");
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"));
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Like [`call`], but panics (naming the request and the answer) unless
/// the status is 2xx.
async fn call_ok(method: Method, url: Url, body: Option<&Value>) -> Value {
    let what = format!("{method} {url}");
    let (status, answer) = call(method, url, body).await;
    assert!(status.is_success(), "{what}: {status}: {answer}");
    answer
}

/// True when `index` exists.
pub async fn exists(index: &str) -> bool {
    call(Method::HEAD, endpoint(&[index]), None)
        .await
        .0
        .is_success()
}

/// Makes every write to `index` visible to search. Panics if the index does
/// not exist.
pub async fn refresh(index: &str) {
    call_ok(Method::POST, endpoint(&[index, "_refresh"]), None).await;
}

/// Every document of `index` (refreshed first), as `_id` -> `_source`.
/// Panics if the index does not exist or holds more than 10 000 documents
/// (the server's result window).
pub async fn documents(index: &str) -> BTreeMap<String, Value> {
    refresh(index).await;
    let query = json!({"size": 10_000, "query": {"match_all": {}}});
    let answer = call_ok(Method::POST, endpoint(&[index, "_search"]), Some(&query)).await;
    let hits = answer["hits"]["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("search {index}: no hits in {answer}"));
    let total = &answer["hits"]["total"];
    assert!(
        total["relation"] == "eq" && total["value"] == hits.len(),
        "search {index}: {total} documents, more than one page"
    );
    hits.iter()
        .map(|hit| {
            let id = hit["_id"].as_str().expect("hit _id").to_owned();
            (id, hit["_source"].clone())
        })
        .collect()
}

/// How many documents `index` holds (refreshed first; deleted documents
/// do not count). Panics if the index does not exist.
pub async fn count(index: &str) -> u64 {
    refresh(index).await;
    let answer = call_ok(Method::GET, endpoint(&[index, "_count"]), None).await;
    answer["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("count {index}: {answer}"))
}

/// The `_source` of document `id` in `index` (real-time: no refresh
/// needed), or `None` when the document or the index does not exist.
pub async fn get(index: &str, id: &str) -> Option<Value> {
    let url = endpoint(&[index, "_doc", id]);
    let what = url.to_string();
    let (status, answer) = call(Method::GET, url, None).await;
    match status {
        StatusCode::NOT_FOUND => None,
        s if s.is_success() && answer["found"] == json!(true) => Some(answer["_source"].clone()),
        s => panic!("GET {what}: {s}: {answer}"),
    }
}

/// Deletes `index` and its documents; an index that does not exist is
/// fine. Panics on any other failure.
pub async fn delete_index(index: &str) {
    let (status, answer) = call(Method::DELETE, endpoint(&[index]), None).await;
    assert!(
        status.is_success() || status == StatusCode::NOT_FOUND,
        "delete index {index}: {status}: {answer}"
    );
}

/// Creates `index` with `body` (`{"settings": ..., "mappings": ...}`, or
/// `{}`). Panics if it exists already or the body is refused.
pub async fn create_index(index: &str, body: Value) {
    call_ok(Method::PUT, endpoint(&[index]), Some(&body)).await;
}

/// Adds fields to the mapping of `index` (`body` is `{"properties": ...}`).
/// Panics if the index does not exist or a field would change type.
pub async fn put_mapping(index: &str, body: Value) {
    call_ok(Method::PUT, endpoint(&[index, "_mapping"]), Some(&body)).await;
}

/// The mapping of `index` (`{"properties": ...}`, as the server reports it).
/// Panics if the index does not exist.
pub async fn mapping(index: &str) -> Value {
    let answer = call_ok(Method::GET, endpoint(&[index, "_mapping"]), None).await;
    answer[index]["mappings"].clone()
}
