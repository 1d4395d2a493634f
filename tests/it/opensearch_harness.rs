//! Against osmem-server (OpenSearch API): the test helpers of
//! `common::opensearch` and the `_bulk` fault proxy of `common::http_fault`.

use crate::common;

use std::collections::BTreeMap;
use std::io::Write;

use common::http_fault::{HttpFaultProxy, Mode};
use common::opensearch;
use serde_json::{json, Value};

/// Posts NDJSON `lines` to `{base}{path}` (`/_bulk` or `/{index}/_bulk`),
/// gzipped when asked; returns the status and the JSON answer.
async fn bulk(base: &str, path: &str, lines: &[Value], gzip: bool) -> (u16, Value) {
    let mut body = String::new();
    for line in lines {
        body.push_str(&line.to_string());
        body.push('\n');
    }
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-ndjson");
    if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(body.as_bytes()).expect("gzip");
        request = request
            .header("content-encoding", "gzip")
            .body(encoder.finish().expect("gzip"));
    } else {
        request = request.body(body);
    }
    let response = request.send().await.expect("reach the proxy");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("bulk answer");
    (
        status,
        serde_json::from_slice(&bytes).expect("bulk answer is JSON"),
    )
}

/// The (op, status) of each item of a bulk answer.
fn outcomes(answer: &Value) -> Vec<(String, u64)> {
    answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            let (op, result) = item.as_object().expect("item").iter().next().expect("op");
            (op.clone(), result["status"].as_u64().expect("status"))
        })
        .collect()
}

#[tokio::test]
async fn helpers_create_map_read_and_delete_indices() {
    let index = opensearch::unique_index("harness-helpers");
    opensearch::create_index(
        &index,
        json!({"mappings": {"properties": {"name": {"type": "keyword"}}}}),
    )
    .await;
    opensearch::put_mapping(&index, json!({"properties": {"n": {"type": "long"}}})).await;
    let mapping = opensearch::mapping(&index).await;
    assert_eq!(
        mapping["properties"]["name"]["type"], "keyword",
        "{mapping}"
    );
    assert_eq!(mapping["properties"]["n"]["type"], "long", "{mapping}");

    assert_eq!(opensearch::count(&index).await, 0);
    assert!(opensearch::documents(&index).await.is_empty());
    // Ids are path segments: awkward characters must survive.
    let id = "a/b #1?";
    let (status, answer) = bulk(
        &opensearch::url(),
        "/_bulk",
        &[
            json!({"index": {"_index": index, "_id": id}}),
            json!({"name": "x", "n": 1}),
        ],
        false,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        opensearch::get(&index, id).await,
        Some(json!({"name": "x", "n": 1}))
    );
    assert_eq!(opensearch::get(&index, "missing").await, None);
    assert_eq!(opensearch::count(&index).await, 1);

    opensearch::delete_index(&index).await;
    assert_eq!(opensearch::get(&index, id).await, None);
    // Deleting a missing index is fine.
    opensearch::delete_index(&index).await;
}

#[tokio::test]
async fn forward_mode_passes_bulk_requests_through() {
    let index = opensearch::unique_index("harness-forward");
    let proxy = HttpFaultProxy::start(&opensearch::url());
    let (status, answer) = bulk(
        &proxy.url(),
        "/_bulk",
        &[
            json!({"index": {"_index": index, "_id": "a"}}),
            json!({"v": 1}),
            json!({"index": {"_index": index, "_id": "b"}}),
            json!({"v": 2}),
        ],
        false,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], false, "{answer}");
    let expected: BTreeMap<String, Value> =
        [("a".into(), json!({"v": 1})), ("b".into(), json!({"v": 2}))]
            .into_iter()
            .collect();
    assert_eq!(opensearch::documents(&index).await, expected);
    assert_eq!(proxy.bulk_requests(), 1);
    assert_eq!(proxy.rejected_items(), 0);
    opensearch::delete_index(&index).await;
}

#[tokio::test]
async fn too_many_requests_refuses_bulk_requests_only() {
    let index = opensearch::unique_index("harness-429");
    opensearch::create_index(&index, json!({})).await;
    let proxy = HttpFaultProxy::start(&opensearch::url());
    proxy.set_mode(Mode::TooManyRequests);
    let lines = [
        json!({"index": {"_index": index, "_id": "a"}}),
        json!({"v": 1}),
    ];
    let (status, answer) = bulk(&proxy.url(), "/_bulk", &lines, false).await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["status"], 429, "{answer}");
    assert_eq!(
        answer["error"]["type"], "es_rejected_execution_exception",
        "{answer}"
    );
    assert_eq!(
        opensearch::count(&index).await,
        0,
        "nothing reached the server"
    );

    // Other requests still go through.
    let root = reqwest::get(format!("{}/", proxy.url()))
        .await
        .expect("reach the proxy");
    assert_eq!(root.status().as_u16(), 200);

    proxy.set_mode(Mode::Forward);
    let (status, answer) = bulk(&proxy.url(), "/_bulk", &lines, false).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(opensearch::count(&index).await, 1);
    assert_eq!(proxy.bulk_requests(), 2);
    opensearch::delete_index(&index).await;
}

#[tokio::test]
async fn reject_items_fails_every_nth_item_without_applying_it() {
    let index = opensearch::unique_index("harness-reject");
    let proxy = HttpFaultProxy::start(&opensearch::url());
    proxy.set_mode(Mode::RejectItems { every: 2 });
    let (status, answer) = bulk(
        &proxy.url(),
        "/_bulk",
        &[
            json!({"index": {"_index": index, "_id": "d1"}}),
            json!({"v": 1}),
            json!({"create": {"_index": index, "_id": "d2"}}),
            json!({"v": 2}),
            json!({"index": {"_index": index, "_id": "d3"}}),
            json!({"v": 3}),
            json!({"create": {"_index": index, "_id": "d4"}}),
            json!({"v": 4}),
        ],
        false,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], true, "{answer}");
    assert_eq!(
        outcomes(&answer),
        [
            ("index", 201),
            ("create", 429),
            ("index", 201),
            ("create", 429)
        ]
        .map(|(op, status)| (op.to_owned(), status))
    );
    let ids: Vec<&str> = answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            item.as_object().expect("item").values().next().expect("op")["_id"]
                .as_str()
                .expect("_id")
        })
        .collect();
    assert_eq!(ids, ["d1", "d2", "d3", "d4"]);
    assert_eq!(
        answer["items"][1]["create"]["error"]["type"],
        "es_rejected_execution_exception"
    );
    let documents = opensearch::documents(&index).await;
    assert_eq!(documents.keys().collect::<Vec<_>>(), ["d1", "d3"]);
    assert_eq!(proxy.rejected_items(), 2);
    assert_eq!(proxy.bulk_requests(), 1);
    opensearch::delete_index(&index).await;
}

#[tokio::test]
async fn reject_items_reads_gzip_bodies_deletes_and_the_path_index() {
    let index = opensearch::unique_index("harness-reject-gz");
    let proxy = HttpFaultProxy::start(&opensearch::url());
    let path = format!("/{index}/_bulk");
    let (status, answer) = bulk(
        &proxy.url(),
        &path,
        &[
            json!({"index": {"_id": "d1"}}),
            json!({"v": 1}),
            json!({"index": {"_id": "d3"}}),
            json!({"v": 3}),
        ],
        true,
    )
    .await;
    assert_eq!(status, 200, "gzip passes through in Forward mode: {answer}");

    proxy.set_mode(Mode::RejectItems { every: 2 });
    // Positions 2 (index d5) and 4 (delete d3) are rejected.
    let (status, answer) = bulk(
        &proxy.url(),
        &path,
        &[
            json!({"delete": {"_id": "d1"}}),
            json!({"index": {"_id": "d5"}}),
            json!({"v": 5}),
            json!({"update": {"_id": "d3"}}),
            json!({"doc": {"w": 3}}),
            json!({"delete": {"_id": "d3"}}),
        ],
        true,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        outcomes(&answer),
        [
            ("delete", 200),
            ("index", 429),
            ("update", 200),
            ("delete", 429)
        ]
        .map(|(op, status)| (op.to_owned(), status))
    );
    assert_eq!(answer["items"][1]["index"]["_index"], index.as_str());
    let expected: BTreeMap<String, Value> = [("d3".into(), json!({"v": 3, "w": 3}))]
        .into_iter()
        .collect();
    assert_eq!(opensearch::documents(&index).await, expected);
    assert_eq!(proxy.rejected_items(), 2);
    assert_eq!(proxy.bulk_requests(), 2);

    // When every item is rejected nothing is forwarded at all.
    proxy.set_mode(Mode::RejectItems { every: 1 });
    let (status, answer) = bulk(
        &proxy.url(),
        &path,
        &[json!({"delete": {"_id": "d3"}})],
        false,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(outcomes(&answer), [("delete".to_owned(), 429)]);
    assert!(opensearch::get(&index, "d3").await.is_some());
    assert_eq!(proxy.rejected_items(), 3);
    opensearch::delete_index(&index).await;
}
