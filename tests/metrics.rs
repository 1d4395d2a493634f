//! The metrics endpoint during live DynamoDB Local runs: counters move as
//! records flow, `/healthz` and `/readyz` answer, the sink lag and
//! `/readyz` follow a PostgreSQL outage (and recover), no sink secret shows
//! in `/metrics` or the logs, and a real Prometheus scrapes the records
//! and lag series and answers them through its query API.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::engine::{spawn, write_config};
use common::fleet::terminate;
use common::observe::{free_port, get, sample};
use common::postgres::OwnPostgres;

/// The engine of a test, stopped when the test ends.
struct Engine(Child);

impl Drop for Engine {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A config for `table` into `sinks`, serving metrics on `port`.
fn config_with_metrics(
    dir: &std::path::Path,
    table: &str,
    sinks: &str,
    port: u16,
) -> std::path::PathBuf {
    let config = write_config(dir, &[table], "", sinks);
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace(
        "[source]\n",
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[source]\n"),
    );
    std::fs::write(&config, text).expect("config");
    config
}

/// Waits until `/metrics` satisfies `check`, and returns that exposition.
async fn wait_metrics(base: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    wait_answer(&format!("{base}/metrics"), what, |status, body| {
        status == 200 && check(body)
    })
    .await
}

/// Waits until `url` answers `status`, and returns the body.
async fn wait_status(url: &str, status: u16) -> String {
    let what = format!("{status} from {url}");
    wait_answer(url, &what, |code, _| code == status).await
}

/// Waits until `url`'s answer satisfies `check`, and returns its body.
async fn wait_answer(url: &str, what: &str, check: impl Fn(u16, &str) -> bool) -> String {
    let matched = std::sync::Mutex::new(None);
    let (matched_ref, check) = (&matched, &check);
    common::wait_for_async(what, Duration::from_secs(60), move || async move {
        let Some((status, body)) = get(url).await else {
            return false;
        };
        let ok = check(status, &body);
        if ok {
            *matched_ref.lock().expect("lock") = Some(body);
        }
        ok
    })
    .await;
    matched.into_inner().expect("lock").unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn counters_move_and_probes_answer_during_a_live_run() {
    let client = common::client().await;
    let table = common::unique_table("metrics");
    common::create_table(&client, &table).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let sink = common::engine::sqlite_sink(&dir.path().join("replica.db"));
    let config = config_with_metrics(dir.path(), &table, &sink, port);
    let log = dir.path().join("engine.log");
    let mut engine = Engine(spawn(&config, &log));
    let base = format!("http://127.0.0.1:{port}");
    wait_status(&format!("{base}/healthz"), 200).await;
    wait_status(&format!("{base}/readyz"), 200).await;

    common::workload::run(&client, &table, 20, 60, 31, 1).await;
    let changes = common::scan(&client, &table).await.len();
    assert!(changes > 0);
    let records = [("table", table.as_str())];
    let body = wait_metrics(&base, "60 records read and written", |body| {
        sample(body, "dynamo_cdc_records_read_total", &records) >= Some(60.0)
            && sample(
                body,
                "dynamo_cdc_sink_records_written_total",
                &[("sink", "sqlite")],
            ) >= Some(60.0)
    })
    .await;
    for name in [
        "dynamo_cdc_get_records_calls_total",
        "dynamo_cdc_read_lag_seconds",
        "dynamo_cdc_sink_lag_seconds",
        "dynamo_cdc_checkpoint_age_seconds",
        "dynamo_cdc_sink_batch_duration_seconds_count",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        assert!(sample(&body, name, &[]).is_some(), "no {name} in:\n{body}");
    }
    // Read to its end with everything acknowledged: an idle table is not behind.
    wait_metrics(&base, "the lag of the idle table to be 0", |body| {
        sample(body, "dynamo_cdc_read_lag_seconds", &records) == Some(0.0)
            && sample(body, "dynamo_cdc_sink_lag_seconds", &records) == Some(0.0)
    })
    .await;
    let (status, body) = get(&format!("{base}/nothing")).await.expect("answer");
    assert_eq!(status, 404, "{body}");
    terminate(&mut engine.0);
    assert!(engine.0.wait().expect("reap").success());
}

#[tokio::test(flavor = "multi_thread")]
async fn lag_and_readiness_follow_a_sink_outage() {
    let client = common::client().await;
    let table = common::unique_table("metrics_outage");
    common::create_table(&client, &table).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = OwnPostgres::create(&dir.path().join("pg"));
    let port = free_port();
    // The password is not needed (trust auth); it must never show.
    let secret = "s3cret-in-the-url";
    let sinks = format!(
        "[[sinks]]\ntype = \"postgres\"\nurl = \"{} password={secret}\"\ncreate_table = true\n\
         [sinks.batch]\nmax_age = \"20ms\"\nmax_retry_backoff = \"300ms\"\nunready_after = \"2s\"\n",
        server.url()
    );
    let config = config_with_metrics(dir.path(), &table, &sinks, port);
    let log = dir.path().join("engine.log");
    let mut engine = Engine(spawn(&config, &log));
    let base = format!("http://127.0.0.1:{port}");
    let records = [("table", table.as_str())];
    common::workload::run(&client, &table, 10, 20, 41, 1).await;
    wait_metrics(&base, "the first changes written", |body| {
        sample(
            body,
            "dynamo_cdc_sink_records_written_total",
            &[("sink", "postgres")],
        ) >= Some(20.0)
    })
    .await;
    wait_status(&format!("{base}/readyz"), 200).await;

    // PostgreSQL goes away while changes keep coming.
    server.stop();
    common::workload::run(&client, &table, 10, 20, 42, 1).await;
    let not_ready = wait_status(&format!("{base}/readyz"), 503).await;
    assert!(
        not_ready.contains("sink postgres: failing for"),
        "{not_ready}"
    );
    // DynamoDB Local rounds creation times down to the minute, so the lag
    // starts anywhere below a minute: it must keep rising, above the
    // reader's (which is at the end of the shard).
    let first = wait_metrics(&base, "a sink lag during the outage", |body| {
        sample(body, "dynamo_cdc_sink_lag_seconds", &records) > Some(0.0)
    })
    .await;
    let started = sample(&first, "dynamo_cdc_sink_lag_seconds", &records).unwrap_or_default();
    let during = wait_metrics(&base, "the sink lag to rise by 2 s", |body| {
        sample(body, "dynamo_cdc_sink_lag_seconds", &records) >= Some(started + 2.0)
    })
    .await;
    let read_lag = sample(&during, "dynamo_cdc_read_lag_seconds", &records);
    assert_eq!(
        read_lag,
        Some(0.0),
        "the reader is not behind, the sink is:\n{during}"
    );
    assert!(
        sample(
            &during,
            "dynamo_cdc_sink_retries_total",
            &[("sink", "postgres")]
        ) > Some(0.0)
    );

    // It comes back: the same process catches up, and is ready again.
    server.start();
    wait_status(&format!("{base}/readyz"), 200).await;
    let after = wait_metrics(&base, "the sink lag to fall to 0", |body| {
        sample(body, "dynamo_cdc_sink_lag_seconds", &records) == Some(0.0)
    })
    .await;
    assert!(
        !after.contains(secret),
        "the sink's password is in /metrics"
    );
    terminate(&mut engine.0);
    assert!(engine.0.wait().expect("reap").success());
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(
        !logged.contains(secret),
        "the sink's password is in the log"
    );
}

/// A Prometheus server scraping `target` every second, stopped when dropped.
struct Prometheus {
    child: Child,
    url: String,
}

impl Prometheus {
    fn start(dir: &std::path::Path, target: &str) -> Self {
        let binary = std::env::var("DYNAMO_CDC_TEST_PROMETHEUS").unwrap_or_else(|_| {
            panic!("DYNAMO_CDC_TEST_PROMETHEUS is not set: run the tests with scripts/test.sh, which installs Prometheus")
        });
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: dynamo-cdc\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("prometheus.yml");
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The sum of an instant query's values, when it has any.
    async fn query(&self, expression: &str) -> Option<f64> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query", self.url),
            &[("query", expression)],
        )
        .ok()?;
        let (200, body) = get(url.as_str()).await? else {
            return None;
        };
        let answer: serde_json::Value = serde_json::from_str(&body).ok()?;
        let results = answer["data"]["result"].as_array()?;
        if results.is_empty() {
            return None;
        }
        Some(
            results
                .iter()
                .filter_map(|r| r["value"][1].as_str()?.parse::<f64>().ok())
                .sum(),
        )
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_throughput_and_lag() {
    let client = common::client().await;
    let table = common::unique_table("metrics_prom");
    common::create_table(&client, &table).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let sink = common::engine::sqlite_sink(&dir.path().join("replica.db"));
    let config = config_with_metrics(dir.path(), &table, &sink, port);
    let mut engine = Engine(spawn(&config, &dir.path().join("engine.log")));
    let prometheus = Prometheus::start(dir.path(), &format!("127.0.0.1:{port}"));
    common::workload::run(&client, &table, 20, 40, 51, 1).await;

    let records = format!("sum(dynamo_cdc_records_read_total{{table=\"{table}\"}})");
    let lag = format!("max(dynamo_cdc_sink_lag_seconds{{table=\"{table}\"}})");
    let (prometheus, records, lag) = (&prometheus, records.as_str(), lag.as_str());
    common::wait_for_async(
        "Prometheus to hold the records read and the lag",
        Duration::from_secs(90),
        move || async move {
            prometheus.query(records).await >= Some(40.0) && prometheus.query(lag).await.is_some()
        },
    )
    .await;
    let up = prometheus.query("up{job=\"dynamo-cdc\"}").await;
    assert_eq!(up, Some(1.0), "the scrape target is down");
    terminate(&mut engine.0);
    assert!(engine.0.wait().expect("reap").success());
}
