//! Running the engine against a Kinesis stream in tests: configs whose
//! tables read a Kinesis stream, checkpoint and log checks, setup helpers.

use std::path::Path;
use std::time::Duration;

use super::{Forwarder, ForwarderOptions};
use crate::common;
use crate::common::engine::write_config;
use crate::common::kinesis;

/// How long to wait for a forwarder or the engine to go quiet.
pub const IDLE: Duration = Duration::from_secs(90);

pub fn postgres_url() -> String {
    std::env::var("DYNAMO_CDC_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("DYNAMO_CDC_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL")
    })
}

pub async fn postgres() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}

/// A config whose tables read `stream` (each `[[tables]]` entry gets
/// `kinesis_stream` and the `table_options` lines).
pub fn kinesis_config(
    dir: &Path,
    tables: &[&str],
    stream: &str,
    table_options: &str,
    sinks: &str,
) -> std::path::PathBuf {
    let config = write_config(dir, tables, "", sinks);
    let text = std::fs::read_to_string(&config).expect("read config");
    let text = text.replace(
        "[aws]\n",
        &format!(
            "[aws]\nkinesis_endpoint_url = \"{}\"\n",
            kinesis::endpoint()
        ),
    );
    let mut text = text;
    for table in tables {
        let entry = format!("name = \"{table}\"\n");
        text = text.replace(
            &entry,
            &format!("{entry}kinesis_stream = \"{stream}\"\n{table_options}"),
        );
    }
    std::fs::write(&config, text).expect("write config");
    config
}

/// Checkpoints stored so far: (shard, sequence).
pub fn checkpoints(state: &Path) -> Vec<(String, Option<String>)> {
    let Ok(db) = rusqlite::Connection::open(state.join("checkpoints.db")) else {
        return Vec::new();
    };
    let Ok(mut statement) = db.prepare("SELECT shard_id, sequence FROM checkpoints") else {
        return Vec::new();
    };
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
}

pub fn checkpointed(state: &Path) -> usize {
    checkpoints(state)
        .iter()
        .filter(|(_, sequence)| sequence.is_some())
        .count()
}

/// In the engine's logs (runs in order), every child shard starts only after
/// each of its parents was read to its end.
pub fn assert_parents_first(logs: &str, lineage: &[kinesis::ShardLineage]) {
    let first_line = |needle: &str, shard: &str| {
        logs.lines().position(|line| {
            let field = format!("shard={shard}");
            line.contains(needle) && line.split_whitespace().any(|word| word == field)
        })
    };
    let mut children = 0;
    for (child, parent, adjacent, _) in lineage {
        let parents: Vec<&String> = parent.iter().chain(adjacent.iter()).collect();
        if parents.is_empty() {
            continue;
        }
        children += 1;
        let started = first_line("reading shard", child)
            .unwrap_or_else(|| panic!("child {child} was never read:\n{logs}"));
        for parent in parents {
            let drained = first_line("shard read to its end", parent)
                .unwrap_or_else(|| panic!("parent {parent} of {child} was never drained:\n{logs}"));
            assert!(
                drained < started,
                "child {child} started before parent {parent} was drained"
            );
        }
    }
    assert!(children >= 3, "{lineage:?}");
}

/// The clients, a new table and a new Kinesis stream of `shards` shards.
pub async fn setup(
    prefix: &str,
    shards: i32,
) -> (
    aws_sdk_dynamodb::Client,
    aws_sdk_kinesis::Client,
    String,
    String,
) {
    let client = common::client().await;
    let kin = kinesis::client();
    let table = common::unique_table(prefix);
    let stream = kinesis::unique_stream(&prefix.replace('_', "-"));
    common::create_table(&client, &table).await;
    kinesis::create_stream(&kin, &stream, shards).await;
    (client, kin, table, stream)
}

/// Forwards everything `table`'s stream holds now into `stream`, then
/// stops; returns how many records it put.
pub async fn forward_all(table: &str, stream: &str) -> u64 {
    let forwarder = Forwarder::start(
        &common::endpoint(),
        table,
        stream,
        ForwarderOptions::default(),
    );
    forwarder.wait_idle(IDLE).await;
    let forwarded = forwarder.forwarded();
    forwarder.stop().await;
    forwarded
}
