//! Kafka access for tests: tansu (started by scripts/test.sh), read by an independent consumer.

use std::collections::BTreeMap;
use std::process::Command;

use serde::Deserialize;

/// The bootstrap servers (`127.0.0.1:PORT`) exported by scripts/test.sh.
pub fn brokers() -> String {
    std::env::var("DYNAMO_CDC_TEST_KAFKA_BROKERS").unwrap_or_else(|_| {
        panic!(
            "DYNAMO_CDC_TEST_KAFKA_BROKERS is not set: run the tests with scripts/test.sh, \
             which starts tansu"
        )
    })
}

/// A python with confluent-kafka and kafka-python (runs tests/kafka_*.py), exported by
/// scripts/test.sh.
pub fn python() -> String {
    std::env::var("DYNAMO_CDC_TEST_KAFKA_PYTHON").unwrap_or_else(|_| {
        panic!(
            "DYNAMO_CDC_TEST_KAFKA_PYTHON is not set: run the tests with scripts/test.sh, \
             which installs confluent-kafka"
        )
    })
}

/// A topic name prefix unique to this test run: `prefix` with the process
/// id and a random number (e.g. `orders-4242-17`), for a sink topic
/// template such as `{prefix}.{table}` that names fresh topics. `prefix`
/// may hold only what topic names may: ASCII letters, digits, `.`, `_`, `-`.
pub fn unique_topic_prefix(prefix: &str) -> String {
    assert!(
        prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
        "{prefix:?} is not a valid topic name prefix: ASCII letters, digits, . _ - only"
    );
    format!("{prefix}-{}-{}", std::process::id(), fastrand::u32(..))
}

/// One record of a topic, as tests/kafka_read.py prints it (keys, values and
/// header values are UTF-8 text).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// The partition the record is in.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// The record key (`None`: no key).
    pub key: Option<String>,
    /// The record value (`None`: a tombstone).
    pub value: Option<String>,
    /// The record headers, by name.
    pub headers: BTreeMap<String, String>,
}

/// The output of tests/kafka_read.py.
#[derive(Deserialize)]
struct Topic {
    records: Vec<Record>,
}

/// Every record of `topic` from the beginning, sorted by (partition, offset),
/// read by a fresh consumer group of tests/kafka_read.py with `isolation`
/// (`read_committed` or `read_uncommitted`) as its isolation level. A read
/// takes a few seconds (tansu's group join, then one quiet second at the
/// end). Panics with the script's stderr when it fails (unknown topic,
/// timeout, bytes that are not UTF-8, ...).
pub fn read_topic(topic: &str, isolation: &str) -> Vec<Record> {
    read_topic_from(&brokers(), topic, isolation)
}

/// [`read_topic`] from the brokers `bootstrap` (`host:port`).
pub fn read_topic_from(bootstrap: &str, topic: &str, isolation: &str) -> Vec<Record> {
    let output = run_script(
        "kafka_read.py",
        &[bootstrap, topic, "--isolation", isolation],
        &format!("reading topic {topic} ({isolation})"),
    );
    let parsed: Topic = parse_output("kafka_read.py", topic, &output);
    parsed.records
}

/// What a `read_committed` consumer of a real Kafka broker would see of a
/// topic, worked out by tests/kafka_committed.py from the raw record batches
/// and their COMMIT/ABORT control batches (tansu's own `read_committed`
/// also returns aborted records).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct CommittedView {
    /// The delivered records, sorted by (partition, offset): those of
    /// non-transactional batches and of committed transactions.
    pub records: Vec<Record>,
    /// How many records aborted transactions dropped.
    pub aborted: usize,
    /// The records of transactions that have no COMMIT or ABORT marker yet
    /// (not delivered), sorted by (partition, offset).
    pub open: Vec<Record>,
    /// The transaction markers in the topic.
    pub control: ControlCounts,
}

/// How many transaction markers (control records) a topic holds. A
/// transaction writes one marker into each partition it wrote to.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ControlCounts {
    /// COMMIT markers.
    pub commit: usize,
    /// ABORT markers.
    pub abort: usize,
}

/// The committed view of `topic` (see [`CommittedView`]) on the shared
/// broker. Takes about a second (the quiet period that finds the end).
/// Panics with the script's stderr when it fails (unknown topic, timeout,
/// bytes that are not UTF-8, a corrupt batch, ...).
pub fn read_committed_view(topic: &str) -> CommittedView {
    read_committed_view_from(&brokers(), topic)
}

/// [`read_committed_view`] from the brokers `bootstrap` (`host:port`).
pub fn read_committed_view_from(bootstrap: &str, topic: &str) -> CommittedView {
    let output = run_script(
        "kafka_committed.py",
        &[bootstrap, topic],
        &format!("reading the committed view of topic {topic}"),
    );
    parse_output("kafka_committed.py", topic, &output)
}

/// Runs tests/kafka_txn.py (hand-made transactions with confluent-kafka;
/// its usage is at its top) with `args` to the end, against whatever
/// brokers `args` name; its stdout. Panics with its stderr when it fails.
pub fn kafka_txn(args: &[&str]) -> String {
    let what = format!("kafka_txn.py {}", args.join(" "));
    String::from_utf8(run_script("kafka_txn.py", args, &what))
        .unwrap_or_else(|e| panic!("{what} printed something that is not UTF-8: {e}"))
}

/// Starts tests/kafka_txn.py with `args`, whose last step is `ready`, and
/// returns it once it printed `ready` (every step before has been done); the
/// caller ends it, e.g. with [`std::process::Child::kill`] (SIGKILL).
/// Panics with its stderr when it exits before.
pub fn kafka_txn_until_ready(args: &[&str]) -> std::process::Child {
    use std::io::{BufRead, Read};
    let path = format!("{}/tests/kafka_txn.py", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(python())
        .arg(&path)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {path}: {e}"));
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    // Blocks until the script prints its line or exits.
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read kafka_txn.py's stdout");
    if line.trim_end() != "ready" {
        let _ = child.kill();
        let status = child.wait().expect("kafka_txn.py status");
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        panic!(
            "kafka_txn.py {} ended ({status}) before it was ready; stdout {line:?}, stderr: {stderr}",
            args.join(" ")
        );
    }
    child
}

/// Runs tests/`script` with [`python`] and `args`; its stdout. Panics,
/// naming `what`, with the script's stderr when it fails.
fn run_script(script: &str, args: &[&str], what: &str) -> Vec<u8> {
    let path = format!("{}/tests/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {path}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn parse_output<T: serde::de::DeserializeOwned>(script: &str, topic: &str, stdout: &[u8]) -> T {
    serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no valid JSON for topic {topic} ({e}): {}",
            String::from_utf8_lossy(stdout)
        )
    })
}

/// The latest value of each key: the value of its record with the highest
/// offset (`None` when that record is a tombstone), as a compacted topic
/// would keep it. A key always maps to one partition; panics if one appears
/// in two, or if a record has no key.
pub fn last_by_key(records: &[Record]) -> BTreeMap<String, Option<String>> {
    let mut last: BTreeMap<&str, &Record> = BTreeMap::new();
    for record in records {
        let key = record.key.as_deref().unwrap_or_else(|| {
            panic!(
                "record at partition {} offset {} has no key",
                record.partition, record.offset
            )
        });
        match last.get(key) {
            Some(seen) if seen.partition != record.partition => panic!(
                "key {key:?} is in partitions {} and {}",
                seen.partition, record.partition
            ),
            Some(seen) if seen.offset >= record.offset => {}
            _ => {
                last.insert(key, record);
            }
        }
    }
    last.into_iter()
        .map(|(key, record)| (key.to_owned(), record.value.clone()))
        .collect()
}

/// A tansu broker of one test, listening on `listen_port` and advertising
/// `advertised_port` (a proxy in front of it); killed when dropped.
pub struct OwnBroker {
    child: std::process::Child,
}

impl OwnBroker {
    /// Starts `DYNAMO_CDC_TEST_TANSU` (in memory) and waits until it accepts connections.
    pub fn start(listen_port: u16, advertised_port: u16, log: &std::path::Path) -> Self {
        let tansu = std::env::var("DYNAMO_CDC_TEST_TANSU").unwrap_or_else(|_| {
            panic!("DYNAMO_CDC_TEST_TANSU is not set: run the tests with scripts/test.sh, which installs tansu")
        });
        let child = Command::new(tansu)
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://127.0.0.1:{listen_port}"),
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{advertised_port}"),
                "--storage-engine",
                "memory://tansu/",
            ])
            .env("NO_COLOR", "1")
            .stdout(std::fs::File::create(log).expect("log file"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start tansu");
        super::wait_for(
            "tansu to accept connections",
            std::time::Duration::from_secs(30),
            || std::net::TcpStream::connect(("127.0.0.1", listen_port)).is_ok(),
        );
        Self { child }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A broker of the test's own behind a [`TcpProxy`](super::tcp_proxy::TcpProxy)
/// that it advertises (so every client goes through the proxy), its log in
/// `dir`; returns the proxy, the broker (stopped when dropped) and the
/// bootstrap address.
pub async fn proxied_broker(
    dir: &std::path::Path,
) -> (super::tcp_proxy::TcpProxy, OwnBroker, String) {
    let broker_port = super::observe::free_port();
    let proxy = super::tcp_proxy::TcpProxy::start(0, format!("127.0.0.1:{broker_port}")).await;
    let broker = OwnBroker::start(broker_port, proxy.port(), &dir.join("tansu.txt"));
    let bootstrap = format!("127.0.0.1:{}", proxy.port());
    (proxy, broker, bootstrap)
}
