//! The metrics endpoint during live DynamoDB Local runs: counters move as
//! records flow, `/healthz` and `/readyz` answer, the sink lag and
//! `/readyz` follow a PostgreSQL outage (and recover), no sink secret shows
//! in `/metrics` or the logs, and a real Prometheus scrapes the records
//! and lag series and answers them through its query API.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::engine::{spawn, write_config};
use common::fleet::terminate;
use common::observe::{free_port, get, wait_metrics, wait_status};
use common::postgres::OwnPostgres;
use dynamo_cdc::observe::exposition::sample;

/// The engine of a test, stopped when the test ends (its log printed
/// when the test failed).
struct Engine(common::fleet::Worker, std::path::PathBuf);

impl Drop for Engine {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.1).unwrap_or_default();
            eprintln!("--- engine log {}:\n{log}", self.1.display());
        }
    }
}

impl Engine {
    /// SIGTERM, and the engine must exit cleanly.
    fn stop(&mut self) {
        terminate(&mut self.0);
        assert!(self.0.wait().expect("reap").success(), "the engine failed");
    }
}

/// A live run: a new table with one change, the engine following it into
/// `sinks` (a SQLite replica when `None`) and serving metrics on `port`.
struct Live {
    client: aws_sdk_dynamodb::Client,
    table: String,
    port: u16,
    base: String,
    config: std::path::PathBuf,
    engine: Engine,
    dir: tempfile::TempDir,
}

async fn start_live(prefix: &str, dir: tempfile::TempDir, sinks: Option<&str>) -> Live {
    let client = common::client().await;
    let table = table_with_a_change(&client, prefix).await;
    let port = free_port();
    let sinks = sinks.map_or_else(
        || common::engine::sqlite_sink(&dir.path().join("replica.db")),
        str::to_owned,
    );
    let config = config_with_metrics(dir.path(), &table, &sinks, port);
    let log = dir.path().join("engine.log");
    let engine = Engine(spawn(&config, &log), log);
    Live {
        client,
        table,
        port,
        base: format!("http://127.0.0.1:{port}"),
        config,
        engine,
        dir,
    }
}

/// A new table with one change in its stream already: DynamoDB Local can
/// answer a read of a stream created milliseconds before with
/// TrimmedDataAccessException, which the engine (rightly) treats as lost
/// changes.
async fn table_with_a_change(client: &aws_sdk_dynamodb::Client, prefix: &str) -> String {
    let table = common::unique_table(prefix);
    common::create_table(client, &table).await;
    common::workload::run(client, &table, 1, 1, 7, 1).await;
    table
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

#[tokio::test(flavor = "multi_thread")]
async fn counters_move_and_probes_answer_during_a_live_run() {
    let Live {
        client,
        table,
        base,
        mut engine,
        dir: _dir,
        ..
    } = start_live("metrics", tempfile::tempdir().expect("temp dir"), None).await;
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
    engine.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn lag_and_readiness_follow_a_sink_outage() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = OwnPostgres::create(&dir.path().join("pg"));
    // The password is not needed (trust auth); it must never show.
    let secret = "s3cret-in-the-url";
    let sinks = format!(
        "[[sinks]]\ntype = \"postgres\"\nurl = \"{} password={secret}\"\ncreate_table = true\n\
         [sinks.batch]\nmax_age = \"20ms\"\nmax_retry_backoff = \"300ms\"\nunready_after = \"2s\"\n",
        server.url()
    );
    let Live {
        client,
        table,
        base,
        config,
        mut engine,
        // The PostgreSQL server's files live in it: keep it to the end.
        dir: _dir,
        ..
    } = start_live("metrics_outage", dir, Some(&sinks)).await;
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
    // The sink lag keeps rising while the sink is down. (The reader's own
    // lag depends on whether the full sink queue has held it back before
    // it saw the shard's end, which varies with the machine's load.)
    let during = wait_metrics(&base, "the sink lag to rise by 2 s", |body| {
        sample(body, "dynamo_cdc_sink_lag_seconds", &records) >= Some(started + 2.0)
    })
    .await;
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
    let status = common::engine::command(&[
        "status",
        "--json",
        "--config",
        &config.display().to_string(),
    ])
    .output()
    .expect("status");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.contains("\"ready\": true") && !shown.contains(secret),
        "{shown}"
    );
    engine.stop();
    let logged = std::fs::read_to_string(&engine.1).expect("log");
    assert!(
        !logged.contains(secret),
        "the sink's password is in the log"
    );
    // Stop PostgreSQL before its directory goes.
    drop(server);
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
    let Live {
        client,
        table,
        port,
        mut engine,
        dir,
        ..
    } = start_live("metrics_prom", tempfile::tempdir().expect("temp dir"), None).await;
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
    engine.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reports_positions_lag_and_dead_letters() {
    let Live {
        client,
        table,
        port,
        base,
        config,
        mut engine,
        dir,
    } = start_live("status", tempfile::tempdir().expect("temp dir"), None).await;
    common::workload::run(&client, &table, 5, 10, 61, 1).await;
    let records = [("table", table.as_str())];
    wait_metrics(&base, "10 changes written and an idle shard", |body| {
        sample(body, "dynamo_cdc_sink_records_written_total", &[]) >= Some(10.0)
            && sample(body, "dynamo_cdc_sink_lag_seconds", &records) == Some(0.0)
    })
    .await;
    // Two dead letters of the table (as a poison record would leave them).
    let letters = dir.path().join("state/dead-letters");
    std::fs::create_dir_all(&letters).expect("dir");
    std::fs::write(letters.join(format!("{table}.jsonl")), "{}\n{}\n").expect("letters");
    // The checkpoint is written shortly after the acknowledgement.
    let config_path = config.display().to_string();
    let status = || {
        let output = common::engine::command(&["status", "--json", "--config", &config_path])
            .output()
            .expect("status");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("status JSON")
    };
    common::wait_for(
        "a checkpoint in the status",
        Duration::from_secs(30),
        || {
            status()["tables"][0]["shards"][0]["position"]
                .as_str()
                .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
        },
    );
    let mut got = status();
    let shard = &mut got["tables"][0]["shards"][0];
    assert!(
        shard["checkpoint_age_seconds"].as_u64() < Some(60),
        "{shard}"
    );
    assert!(
        shard["stream"].as_str().is_some_and(|s| s.contains(&table)),
        "{shard}"
    );
    for (field, placeholder) in [
        ("stream", "<stream>"),
        ("shard", "<shard>"),
        ("position", "<sequence>"),
        ("checkpoint_age_seconds", "<age>"),
    ] {
        shard[field] = serde_json::json!(placeholder);
    }
    let expected = serde_json::json!({
        "engine": {
            "metrics": format!("http://127.0.0.1:{port}/metrics"),
            "reachable": true,
            "ready": true,
            "not_ready": [],
        },
        "tables": [{
            "table": table,
            "dead_letters": 2,
            "shards": [{
                "stream": "<stream>",
                "shard": "<shard>",
                "position": "<sequence>",
                "checkpoint_age_seconds": "<age>",
                "owner": null,
                "read_lag_seconds": 0.0,
                "sink_lag_seconds": 0.0,
            }],
        }],
    });
    assert_eq!(
        got,
        expected,
        "{}",
        serde_json::to_string_pretty(&got).unwrap_or_default()
    );
    engine.stop();
}
