//! ClickHouse access for tests (the server is started by scripts/test.sh).

use std::collections::BTreeMap;

use dynamo_cdc::model::{canonical_item, Item};

/// The ClickHouse HTTP URL exported by scripts/test.sh.
pub fn url() -> String {
    std::env::var("DYNAMO_CDC_TEST_CLICKHOUSE_URL").unwrap_or_else(|_| {
        panic!("DYNAMO_CDC_TEST_CLICKHOUSE_URL is not set: run the tests with scripts/test.sh, which starts ClickHouse")
    })
}

/// Runs a statement and returns the body; panics with the server's message on failure.
pub async fn query(sql: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/", url()))
        .body(sql.to_owned())
        .send()
        .await
        .expect("reach ClickHouse");
    let status = response.status();
    let body = response.text().await.expect("read body");
    assert!(status.is_success(), "{sql}: {body}");
    body
}

/// A database name unique to this test.
pub fn unique_database(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), fastrand::u32(..))
}

/// The current state of a `state`-mode table (`FINAL`, not deleted), canonical, by key.
pub async fn state(database: &str, table: &str) -> BTreeMap<(String, String), Item> {
    let body = query(&format!(
        "SELECT pk, sk, _item FROM `{database}`.`{table}` FINAL WHERE _is_deleted = 0 FORMAT JSONEachRow"
    ))
    .await;
    let mut out = BTreeMap::new();
    for line in body.lines() {
        let row: serde_json::Value = serde_json::from_str(line).expect("row json");
        let item = dynamo_cdc::decode::decode_item(row["_item"].as_str().expect("_item"))
            .expect("item decodes");
        let key = (
            row["pk"].as_str().expect("pk").to_owned(),
            row["sk"].as_str().expect("sk").to_owned(),
        );
        assert!(
            out.insert(key, canonical_item(&item)).is_none(),
            "FINAL returned a key twice"
        );
    }
    out
}
