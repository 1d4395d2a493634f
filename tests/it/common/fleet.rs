//! A fleet of engine processes sharing shards through a lease table, for
//! tests: one config for every worker (worker id and state directory from
//! the environment), starting and signalling workers, reading lease owners.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use dynamo_cdc::coordinator::lease::LeaseTable;

pub use super::engine::Worker;

/// Short leases, so that expiry (kill -9, stalls) happens quickly.
pub const LEASE: &str = "3s";
/// Long leases, so that a fast handover cannot be mistaken for expiry.
pub const LONG_LEASE: &str = "30s";

pub fn postgres_url() -> String {
    std::env::var("DYNAMO_CDC_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("DYNAMO_CDC_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL")
    })
}

/// One config for every worker into a PostgreSQL `schema`: the worker id
/// and state directory come from the environment.
pub fn fleet_config(
    lease: &str,
    dir: &Path,
    tables: &[&str],
    lease_table: &str,
    schema: &str,
) -> std::path::PathBuf {
    let sinks = format!(
        "[[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"\ncreate_table = true\n\
         [sinks.batch]\nmax_age = \"20ms\"\n",
        postgres_url()
    );
    fleet_config_with_sinks(lease, dir, tables, lease_table, &sinks)
}

/// One config for every worker into `sinks` (TOML): the worker id
/// (`WORKER_ID`) and state directory (`WORKER_STATE`) come from the environment.
pub fn fleet_config_with_sinks(
    lease: &str,
    dir: &Path,
    tables: &[&str],
    lease_table: &str,
    sinks: &str,
) -> std::path::PathBuf {
    let config = super::engine::write_config(dir, tables, "discovery_interval = \"1s\"", sinks);
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text
        .replace(
            &format!("state_dir = \"{}\"", dir.join("state").display()),
            "state_dir = \"${WORKER_STATE}\"",
        )
        .replace(
            "[source]\n",
            &format!(
                "[coordinator]\nmode = \"lease_table\"\nlease_table = \"{lease_table}\"\n\
                 worker_id = \"${{WORKER_ID}}\"\nlease_duration = \"{lease}\"\n\n[source]\n"
            ),
        );
    std::fs::write(&config, text).expect("config");
    config
}

pub fn worker(config: &Path, dir: &Path, id: &str) -> Worker {
    let log = std::fs::File::create(dir.join(format!("{id}.log"))).expect("log");
    Worker(
        super::engine::command(&["run", "--config", &config.display().to_string()])
            .env("WORKER_ID", id)
            .env("WORKER_STATE", dir.join(format!("state-{id}")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start a worker"),
    )
}

/// Owners of the shard leases (heartbeats and snapshot items left out):
/// lease key → owner.
pub async fn owners(table: &LeaseTable) -> BTreeMap<String, Option<String>> {
    table
        .scan(true)
        .await
        .expect("scan the lease table")
        .into_iter()
        .filter(|l| !l.key.starts_with("dcdc-worker#") && !l.key.starts_with("dcdc-snapshot#"))
        .map(|l| (l.key, l.owner))
        .collect()
}

pub fn count(owners: &BTreeMap<String, Option<String>>, worker: &str) -> usize {
    owners
        .values()
        .filter(|o| o.as_deref() == Some(worker))
        .count()
}

/// Waits until the table holds exactly the leases of `spread`, each worker
/// in it owning its count (`[("worker-a", 2), ("worker-b", 2)]`).
pub async fn wait_for_spread(leases: &LeaseTable, spread: &[(&str, usize)], timeout: Duration) {
    let total: usize = spread.iter().map(|(_, n)| n).sum();
    let described: Vec<String> = spread.iter().map(|(w, n)| format!("{w} {n}")).collect();
    super::wait_for_async(
        format!("{total} leases held as {}", described.join(", ")),
        timeout,
        move || async move {
            let owners = owners(leases).await;
            owners.len() == total && spread.iter().all(|(w, n)| count(&owners, w) == *n)
        },
    )
    .await;
}

pub fn terminate(child: &mut Child) {
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("send SIGTERM");
}

/// Prints every worker's log when the test fails (the temporary directory
/// goes with it).
pub struct ReportLogs(pub std::path::PathBuf);

impl Drop for ReportLogs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for entry in std::fs::read_dir(&self.0).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("--- {} (last lines)", path.display());
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// `_version` of every row of `<schema>.<table>` (tombstones included).
pub async fn versions(
    pg: &tokio_postgres::Client,
    schema: &str,
    table: &str,
) -> BTreeMap<(String, String), String> {
    pg.query(
        &format!("SELECT pk, sk::text, _version::text FROM \"{schema}\".\"{table}\""),
        &[],
    )
    .await
    .expect("read versions")
    .iter()
    .map(|row| ((row.get(0), row.get(1)), row.get(2)))
    .collect()
}

pub fn signal(child: &Child, name: &str) {
    std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("send a signal");
}

/// A PostgreSQL connection to the test server.
pub async fn postgres() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}

/// Waits until the live view of every table in `schema` equals a Scan.
pub async fn wait_live_equals_tables(
    client: &aws_sdk_dynamodb::Client,
    pg: &tokio_postgres::Client,
    schema: &str,
    tables: &[&str],
) {
    for table in tables {
        let expected = super::scan(client, table).await;
        super::wait_for_async(
            "the live view to equal the table",
            std::time::Duration::from_secs(60),
            || {
                let expected = expected.clone();
                async move { super::postgres::live(pg, schema, table).await == expected }
            },
        )
        .await;
    }
}

/// `count` new tables named after `prefix`, each with a short random
/// workload (seed `seed`) already in its stream.
pub async fn tables_with_changes(
    client: &aws_sdk_dynamodb::Client,
    prefix: &str,
    count: usize,
    seed: u64,
) -> Vec<String> {
    let tables: Vec<String> = (0..count)
        .map(|i| super::unique_table(&format!("{prefix}{i}")))
        .collect();
    for table in &tables {
        super::create_table(client, table).await;
        super::workload::run(client, table, 20, 40, seed, 1).await;
    }
    tables
}

/// A new lease table named after `prefix`, created.
pub async fn new_lease_table(client: &aws_sdk_dynamodb::Client, prefix: &str) -> LeaseTable {
    let table = LeaseTable::new(client.clone(), &super::unique_table(prefix));
    table.ensure_exists().await.expect("create the lease table");
    table
}
