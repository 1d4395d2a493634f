//! A first start an operator can watch: while start-up (`run`, `load`)
//! waits for a sink that does not answer, `/healthz` answers 200 and
//! `/readyz` 503 with `starting: <what it waits for>` (and `status` shows
//! it); SIGTERM or SIGINT then exits 0; and a `replay` into local sinks
//! with a local dimension never asks the EC2 instance metadata service for
//! anything.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use crate::common;

use common::engine::{command, spawn, write_config, Worker};
use common::observe::{free_port, get, wait_answer};

/// A "ClickHouse" that accepts connections and never answers: the sink's
/// first request waits its whole `request_timeout`. The kernel completes
/// the connections from the listen backlog; nothing reads them.
fn black_hole() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind a silent port")
}

/// Starts `run` against a table whose only sink never answers, waits for
/// the probes to report the wait, sends `signal`, and checks the exit.
async fn probes_then_signal(signal: &str) {
    let client = common::client().await;
    let table = common::unique_table("first_start");
    common::create_table(&client, &table).await;
    let silent = black_hole();
    let sink_port = silent.local_addr().expect("address").port();
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &format!(
            "[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[[sinks]]\ntype = \"clickhouse\"\n\
             url = \"http://127.0.0.1:{sink_port}\"\ncreate_table = true\nrequest_timeout = \"10m\"\n"
        ),
    );
    let log = dir.path().join("engine.log");
    let engine = spawn(&config, &log);
    expect_start_up_probes(port).await;
    // `dynamo-cdc status` shows what start-up waits for.
    let config_path = config.display().to_string();
    let status = tokio::task::spawn_blocking(move || {
        command(&["status", "--config", &config_path])
            .output()
            .expect("status")
    })
    .await
    .expect("status");
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.contains("NOT READY: starting: connecting sink clickhouse"),
        "{shown}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    signal_expecting_a_clean_exit(engine, &log, signal).await;
    drop(silent);
}

/// Waits until the probes on `port` say start-up waits for the sink
/// `clickhouse`, and checks liveness holds meanwhile.
async fn expect_start_up_probes(port: u16) {
    let base = format!("http://127.0.0.1:{port}");
    let body = wait_answer(
        &format!("{base}/readyz"),
        "/readyz to report the sink start-up waits for",
        |status, body| status == 503 && body.contains("connecting sink clickhouse"),
    )
    .await;
    assert!(
        body.starts_with("starting: connecting sink clickhouse"),
        "{body}"
    );
    assert_eq!(
        get(&format!("{base}/healthz")).await.map(|(s, _)| s),
        Some(200),
        "liveness must hold while start-up waits"
    );
}

/// Sends SIG`signal` to a process still starting up; it must exit 0 and
/// say it stopped during start-up (`log`: its standard error).
async fn signal_expecting_a_clean_exit(mut engine: Worker, log: &Path, signal: &str) {
    common::fleet::signal(&engine, signal);
    let status = tokio::task::spawn_blocking(move || {
        let status = common::wait_for_exit(&mut engine, Duration::from_secs(60));
        drop(engine);
        status
    })
    .await
    .expect("wait for the engine");
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert_eq!(
        status.code(),
        Some(0),
        "SIG{signal} during start-up:\n{text}"
    );
    assert!(text.contains("stopped during start-up"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_answer_while_a_sink_is_down_and_sigterm_exits_zero() {
    probes_then_signal("TERM").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_during_start_up_exits_zero() {
    probes_then_signal("INT").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loader_waiting_for_its_sink_serves_probes_and_exits_zero_on_sigterm() {
    let silent = black_hole();
    let sink_port = silent.local_addr().expect("address").port();
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("loader.toml");
    // The queue is never reached: start-up waits for the sink first.
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{state}\"\n\n[aws]\nregion = \"us-east-1\"\n\
             endpoint_url = \"http://127.0.0.1:{closed}\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [queue]\nurl = \"http://127.0.0.1:{closed}/000000000000/notices\"\n\n\
             [[tables]]\nname = \"orders\"\nkeys = [{{ name = \"pk\", type = \"S\" }}]\n\n\
             [[sinks]]\ntype = \"clickhouse\"\nurl = \"http://127.0.0.1:{sink_port}\"\n\
             create_table = true\nrequest_timeout = \"10m\"\n",
            state = dir.path().join("state").display(),
            closed = free_port(),
        ),
    )
    .expect("loader config");
    let log = dir.path().join("loader.log");
    let stderr = std::fs::File::create(&log).expect("log");
    let loader = Worker(
        command(&["load", "--config", &config.display().to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start the loader"),
    );
    expect_start_up_probes(port).await;
    signal_expecting_a_clean_exit(loader, &log, "TERM").await;
    drop(silent);
}

/// The recorded stream page of AWS's documentation (table `Forum`).
fn fixture() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/getrecords-aws-example.json")
        .display()
        .to_string()
}

#[test]
fn a_local_replay_never_probes_instance_metadata() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dimension = dir.path().join("forums.csv");
    std::fs::write(&dimension, "forum,category\nDynamoDB,databases\n").expect("dimension");
    let config = dir.path().join("pipeline.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{state}\"\n\n[[dimensions]]\nname = \"forums\"\npath = \"{dimension}\"\n\
             key = \"forum\"\ncolumns = [\"category\"]\n\n[[tables]]\nname = \"Forum\"\n\
             enrich = [{{ dimension = \"forums\", on = [\"ForumName\"], prefix = \"forum_\" }}]\n\n\
             {sink}",
            state = dir.path().join("state").display(),
            dimension = dimension.display(),
            sink = common::engine::sqlite_sink(&dir.path().join("replica.db")),
        ),
    )
    .expect("config");
    // No region anywhere, and a metadata endpoint that refuses at once: a
    // probe would log its failure quickly on any machine.
    let closed = free_port();
    let output = command(&[
        "replay",
        "--config",
        &config.display().to_string(),
        "--table",
        "Forum",
        &fixture(),
    ])
    .env_remove("AWS_REGION")
    .env_remove("AWS_DEFAULT_REGION")
    .env("AWS_CONFIG_FILE", dir.path().join("no-aws-config"))
    .env(
        "AWS_SHARED_CREDENTIALS_FILE",
        dir.path().join("no-aws-credentials"),
    )
    .env(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        format!("http://127.0.0.1:{closed}"),
    )
    .env("RUST_LOG", "debug")
    .output()
    .expect("replay");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("3 records replayed"), "{stderr}");
    assert!(stderr.contains("dimension index built"), "{stderr}");
    for needle in ["IMDS", "imds", "169.254.169.254", "instance metadata"] {
        assert!(
            !stderr.contains(needle),
            "a local replay must not reach for the instance metadata service ({needle}):\n{stderr}"
        );
    }
}
