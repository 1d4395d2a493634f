//! A sink's server taken away under a live `run`: changes keep coming while
//! it is gone, `/readyz` must say which sink is failing, the same process
//! must keep running, and everything must arrive once the server is back.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dynamo_cdc::model::Item;

use super::engine::Worker;

/// How long a sink's server stays away: 60 s, or
/// `DYNAMO_CDC_TEST_OUTAGE_SECS`.
pub fn outage() -> Duration {
    let seconds = std::env::var("DYNAMO_CDC_TEST_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(seconds)
}

/// Settings for a sink's `[sinks.batch]` in outage tests: quick retries,
/// and not ready after 2 s of failing.
pub const BATCH: &str = "max_age = \"20ms\"\nmax_retry_backoff = \"1s\"\nunready_after = \"2s\"\n";

/// A live run of the engine over one table into a sink.
pub struct LiveRun {
    /// DynamoDB Local.
    pub client: aws_sdk_dynamodb::Client,
    /// The followed table.
    pub table: String,
    /// `http://127.0.0.1:PORT` of the engine's metrics endpoint.
    pub metrics: String,
    /// The engine's log.
    pub log: PathBuf,
    engine: Worker,
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("--- {} (last lines)", self.log.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

impl LiveRun {
    /// A new table (named after `prefix`) with changes in its stream, and
    /// the engine following it into `sinks` (TOML), its state in `dir`.
    pub async fn start(prefix: &str, dir: &Path, sinks: &str) -> Self {
        let client = super::client().await;
        let table = super::unique_table(prefix);
        super::create_table(&client, &table).await;
        super::workload::run(&client, &table, 30, 60, 701, 2).await;
        let port = super::observe::free_port();
        let config = super::engine::write_config(dir, &[&table], "", sinks);
        let text = std::fs::read_to_string(&config).expect("config");
        let text = text.replace(
            "[source]\n",
            &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[source]\n"),
        );
        std::fs::write(&config, text).expect("config");
        let log = dir.join("engine.log");
        let engine = super::engine::spawn(&config, &log);
        Self {
            client,
            table,
            metrics: format!("http://127.0.0.1:{port}"),
            log,
            engine,
        }
    }

    /// Waits until `converged` holds for a Scan of the table.
    pub async fn wait_converged<F, Fut>(&self, what: &str, converged: &F)
    where
        F: Fn(BTreeMap<(String, String), Item>) -> Fut,
        Fut: Future<Output = bool>,
    {
        let expected = super::scan(&self.client, &self.table).await;
        super::wait_for_async(what, Duration::from_secs(120), || {
            converged(expected.clone())
        })
        .await;
    }

    /// Takes the sink's server away (`down(true)`) for [`outage`] while
    /// changes keep coming, then brings it back (`down(false)`): `/readyz`
    /// names the failing `sink` during the outage, the same process runs
    /// through it, and `converged` holds after it. Returns how long after
    /// the server came back every change was in the sink.
    pub async fn survive_outage<F, Fut>(
        &mut self,
        sink: &str,
        mut down: impl FnMut(bool),
        converged: F,
    ) -> Duration
    where
        F: Fn(BTreeMap<(String, String), Item>) -> Fut,
        Fut: Future<Output = bool>,
    {
        self.wait_converged("the sink to hold the first changes", &converged)
            .await;
        let readyz = format!("{}/readyz", self.metrics);
        super::observe::wait_status(&readyz, 200).await;

        down(true);
        let started = Instant::now();
        super::workload::run(&self.client, &self.table, 30, 120, 702, 2).await;
        let not_ready = super::observe::wait_status(&readyz, 503).await;
        assert!(
            not_ready.contains(&format!("sink {sink}: failing for")),
            "{not_ready}"
        );
        tokio::time::sleep(outage().saturating_sub(started.elapsed())).await;
        assert!(
            matches!(self.engine.try_wait(), Ok(None)),
            "the engine gave up during the outage"
        );

        down(false);
        let back = Instant::now();
        self.wait_converged("every change in the sink after the outage", &converged)
            .await;
        let recovered = back.elapsed();
        super::observe::wait_status(&readyz, 200).await;
        assert!(
            matches!(self.engine.try_wait(), Ok(None)),
            "the same process recovered"
        );
        println!(
            "{sink}: server away for {} s; every change in the sink {:.1} s after it came back",
            outage().as_secs(),
            recovered.as_secs_f64()
        );
        recovered
    }
}
