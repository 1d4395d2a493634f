//! Every sink's server away for a minute under a live `run` (a TCP proxy
//! that cuts and refuses connections, or for SQLite another process holding
//! the write lock): `/readyz` names the failing sink, the same process
//! recovers by itself, and every change arrives. (Kafka's outage is in
//! tests/kafka_sink.rs, with a broker that advertises the proxy.)

use crate::common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::outage::{LiveRun, BATCH};
use common::tcp_proxy::TcpProxy;
use dynamo_cdc::model::Item;

/// The port of a `http://127.0.0.1:PORT` URL.
fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

/// A proxy to the server at `url` (`http://127.0.0.1:PORT`).
async fn proxy_to(url: &str) -> TcpProxy {
    TcpProxy::start(0, format!("127.0.0.1:{}", port_of(url))).await
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_away_for_a_minute() {
    let server = common::fleet::postgres_url();
    let port = server
        .split_whitespace()
        .find_map(|part| part.strip_prefix("port="))
        .and_then(|p| p.parse::<u16>().ok())
        .expect("a port in the PostgreSQL URL");
    let proxy = TcpProxy::start(0, format!("127.0.0.1:{port}")).await;
    let url = server.replace(&format!("port={port}"), &format!("port={}", proxy.port()));
    let schema = common::unique_table("outage_pg");
    let dir = tempfile::tempdir().expect("temp dir");
    let sinks = format!(
        "[[sinks]]\ntype = \"postgres\"\nurl = \"{url}\"\nschema = \"{schema}\"\ncreate_table = true\n\
         [sinks.batch]\n{BATCH}"
    );
    let mut run = LiveRun::start("outage_pg", dir.path(), &sinks).await;
    let pg = common::fleet::postgres().await;
    let (pg, schema, table) = (&pg, schema.as_str(), run.table.clone());
    let table = table.as_str();
    run.survive_outage(
        "postgres",
        |down| proxy.set_up(!down),
        |expected| async move {
            let view = format!("\"{schema}\".\"{table}_live\"");
            let exists = pg
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&view])
                .await
                .is_ok_and(|row| row.get::<_, bool>(0));
            exists && common::postgres::live(pg, schema, table).await == expected
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_away_for_a_minute() {
    let proxy = proxy_to(&common::clickhouse::url()).await;
    let database = common::clickhouse::unique_database("outage_ch");
    let dir = tempfile::tempdir().expect("temp dir");
    let sinks = format!(
        "[[sinks]]\ntype = \"clickhouse\"\nurl = \"http://127.0.0.1:{}\"\ndatabase = \"{database}\"\n\
         create_table = true\n[sinks.batch]\n{BATCH}",
        proxy.port()
    );
    let mut run = LiveRun::start("outage_ch", dir.path(), &sinks).await;
    let (database, table) = (database.as_str(), run.table.clone());
    let table = table.as_str();
    run.survive_outage(
        "clickhouse",
        |down| proxy.set_up(!down),
        |expected| async move {
            let exists = common::clickhouse::query(&format!("EXISTS TABLE `{database}`.`{table}`"))
                .await
                .trim()
                == "1";
            exists && common::clickhouse::state(database, table).await == expected
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_and_sqs_away_for_a_minute() {
    let proxy = proxy_to(&common::moto::url()).await;
    let bucket = common::unique_table("outage-s3").replace('_', "-");
    common::moto::create_bucket(&bucket).await;
    let sqs = common::moto::sqs();
    let queue_url = common::moto::create_queue(&bucket).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sinks = format!(
        "[[sinks]]\ntype = \"s3\"\nbucket = \"{bucket}\"\nprefix = \"landing/\"\nregion = \"us-east-1\"\n\
         endpoint_url = \"http://127.0.0.1:{}\"\nsqs_queue_url = \"{queue_url}\"\n[sinks.batch]\n{BATCH}",
        proxy.port()
    );
    let mut run = LiveRun::start("outage_s3", dir.path(), &sinks).await;
    // Notices are drained as they come: keep every one seen.
    let notices = Arc::new(Mutex::new(Vec::new()));
    let (sqs, queue_url, notices) = (&sqs, queue_url.as_str(), &notices);
    run.survive_outage(
        "s3",
        |down| proxy.set_up(!down),
        |expected: BTreeMap<(String, String), Item>| async move {
            let fresh = common::moto::drain(sqs, queue_url).await;
            let all = {
                let mut seen = notices.lock().expect("notices");
                seen.extend(
                    fresh
                        .iter()
                        .map(|body| serde_json::from_str(body).expect("notice json")),
                );
                seen.clone()
            };
            common::moto::state_from_notices(&all).await == expected
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn elasticsearch_away_for_a_minute() {
    let proxy = proxy_to(&common::opensearch::url()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("http://127.0.0.1:{}", proxy.port());
    let sinks = format!(
        "{}unready_after = \"2s\"\n",
        common::es_index::es_sink(dir.path(), &url, common::es_index::UNMAPPED, "")
    );
    let mut run = LiveRun::start("outage_es", dir.path(), &sinks).await;
    let index = common::es_index::index_of(&run.table);
    let index = index.as_str();
    run.survive_outage(
        "elasticsearch",
        |down| proxy.set_up(!down),
        |expected| async move {
            common::opensearch::exists(index).await
                && common::es_index::index_difference(index, &expected)
                    .await
                    .is_none()
        },
    )
    .await;
}

/// Holds SQLite's write lock on a database from another connection until
/// dropped.
struct WriteLock {
    release: std::sync::mpsc::Sender<()>,
    holder: Option<std::thread::JoinHandle<()>>,
}

impl WriteLock {
    fn take(path: &std::path::Path) -> Self {
        let (release, released) = std::sync::mpsc::channel();
        let (taken, is_taken) = std::sync::mpsc::channel();
        let path = path.to_owned();
        let holder = std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&path).expect("open the replica");
            conn.execute_batch("BEGIN EXCLUSIVE")
                .expect("take the write lock");
            taken.send(()).expect("report the lock");
            let _ = released.recv();
            conn.execute_batch("COMMIT")
                .expect("release the write lock");
        });
        is_taken.recv().expect("the lock taken");
        Self {
            release,
            holder: Some(holder),
        }
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = self.release.send(());
        if let Some(holder) = self.holder.take() {
            let _ = holder.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_locked_by_another_process_for_a_minute() {
    let dir = tempfile::tempdir().expect("temp dir");
    let replica = dir.path().join("replica.db");
    let sinks = format!(
        "{}[sinks.batch]\n{BATCH}",
        common::engine::sqlite_sink(&replica)
    );
    let mut run = LiveRun::start("outage_sqlite", dir.path(), &sinks).await;
    let table = run.table.clone();
    let (replica_path, table) = (replica.as_path(), table.as_str());
    let mut lock: Option<WriteLock> = None;
    run.survive_outage(
        "sqlite",
        |down| lock = down.then(|| WriteLock::take(replica_path)),
        |expected| async move {
            common::replica_if_present(replica_path, table).as_ref() == Some(&expected)
        },
    )
    .await;
}
