//! `dynamo-cdc status`: for each table and shard, the position, the
//! checkpoint's age, the owner (with a lease table) and the lag, plus each
//! table's dead-letter count. Checkpoints come from the embedded store or
//! the lease table; lag and readiness from the running engine's metrics
//! endpoint when `[metrics] listen` is set and it answers.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::{CoordinatorMode, PipelineConfig};
use crate::coordinator::lease::table::{
    HEARTBEAT_PREFIX, SHARD_END, SNAPSHOT_PREFIX, TRIM_HORIZON,
};
use crate::coordinator::lease::LeaseTable;
use crate::coordinator::CheckpointStore;
use crate::dead_letter::DeadLetters;
use crate::metric_names as names;
use crate::observe::exposition::sample;
use crate::source::streams::StreamsApi;

/// One shard's line.
#[derive(Debug, Clone, Serialize)]
struct ShardLine {
    stream: String,
    shard: String,
    /// The checkpoint: a sequence number, `TRIM_HORIZON` (nothing read
    /// yet) or `SHARD_END` (read to its end).
    position: String,
    checkpoint_age_seconds: Option<u64>,
    /// The lease's owner (lease table only).
    owner: Option<String>,
    read_lag_seconds: Option<f64>,
    sink_lag_seconds: Option<f64>,
}

/// One table's lines.
#[derive(Debug, Serialize)]
struct TableLines {
    table: String,
    dead_letters: u64,
    shards: Vec<ShardLine>,
}

/// What the engine's endpoint said.
#[derive(Debug, Default, Serialize)]
struct EngineLine {
    metrics: Option<String>,
    reachable: bool,
    ready: Option<bool>,
    not_ready: Vec<String>,
}

/// The whole status.
#[derive(Debug, Serialize)]
struct Status {
    engine: EngineLine,
    tables: Vec<TableLines>,
}

/// Prints the status of `pipeline`, as text or as one JSON document.
pub(super) async fn show(pipeline: &PipelineConfig, json: bool) -> anyhow::Result<ExitCode> {
    let shards = checkpoints(pipeline).await?;
    let (engine, exposition) = ask_engine(pipeline.metrics.listen).await;
    let dead_letters = DeadLetters::new(&pipeline.state_dir.join("dead-letters"));
    let tables = pipeline
        .tables
        .iter()
        .map(|table| {
            let lag = |name: &str, shard: &str| {
                let labels = [("table", table.name.as_str()), ("shard", shard)];
                exposition
                    .as_deref()
                    .and_then(|text| sample(text, name, &labels))
            };
            let lines = shards
                .iter()
                .filter(|(t, _)| *t == table.name)
                .map(|(_, line)| ShardLine {
                    read_lag_seconds: lag(names::READ_LAG, &line.shard),
                    sink_lag_seconds: lag(names::SINK_LAG, &line.shard),
                    ..line.clone()
                })
                .collect();
            TableLines {
                table: table.name.clone(),
                dead_letters: count_lines(&dead_letters.path_for(&table.name)),
                shards: lines,
            }
        })
        .collect();
    let status = Status { engine, tables };
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_text(&status);
    }
    Ok(ExitCode::SUCCESS)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Every stored shard position, with its table.
async fn checkpoints(pipeline: &PipelineConfig) -> anyhow::Result<Vec<(String, ShardLine)>> {
    let now = now_ms();
    let line = |stream: &str, shard: &str, position: String, at: Option<u64>, owner| ShardLine {
        stream: stream.to_owned(),
        shard: shard.to_owned(),
        position,
        checkpoint_age_seconds: at.map(|at| now.saturating_sub(at) / 1000),
        owner,
        read_lag_seconds: None,
        sink_lag_seconds: None,
    };
    if pipeline.coordinator.mode == CoordinatorMode::LeaseTable {
        let api = StreamsApi::connect(&pipeline.aws, &pipeline.source).await?;
        let leases = LeaseTable::new(
            api.dynamodb_client().clone(),
            &pipeline.coordinator.lease_table,
        );
        let mut found = Vec::new();
        for lease in leases.scan(true).await? {
            let ours =
                !lease.key.starts_with(HEARTBEAT_PREFIX) && !lease.key.starts_with(SNAPSHOT_PREFIX);
            let (Some(table), Some((stream, shard))) =
                (lease.table.clone(), lease.key.rsplit_once(':'))
            else {
                continue;
            };
            if ours {
                let entry = line(
                    stream,
                    shard,
                    lease.checkpoint.clone(),
                    lease.checkpointed_at_ms,
                    lease.owner.clone(),
                );
                found.push((table, entry));
            }
        }
        return Ok(found);
    }
    let path = CheckpointStore::path_in(&pipeline.state_dir);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let rows = CheckpointStore::open(&path)?.all()?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let position = match (&row.checkpoint.sequence, row.checkpoint.finished) {
                (_, true) => SHARD_END.to_owned(),
                (Some(sequence), false) => sequence.as_str().to_owned(),
                (None, false) => TRIM_HORIZON.to_owned(),
            };
            let at = u64::try_from(row.updated_at_ms).ok();
            let entry = line(&row.stream_arn, &row.shard, position, at, None);
            (row.table, entry)
        })
        .collect())
}

/// Readiness and the metrics exposition of the engine serving `listen`.
async fn ask_engine(listen: Option<SocketAddr>) -> (EngineLine, Option<String>) {
    let Some(mut addr) = listen else {
        return (EngineLine::default(), None);
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let base = format!("http://{addr}");
    let mut engine = EngineLine {
        metrics: Some(format!("{base}/metrics")),
        ..EngineLine::default()
    };
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    else {
        return (engine, None);
    };
    let get = |path: &str| client.get(format!("{base}{path}")).send();
    let exposition = match get("/metrics").await {
        Ok(response) => response.text().await.ok(),
        Err(_) => None,
    };
    engine.reachable = exposition.is_some();
    if let Ok(response) = get("/readyz").await {
        engine.ready = Some(response.status().is_success());
        if let Ok(text) = response.text().await {
            // One reason a line (`starting: …`, `sink …: failing for …`).
            engine.not_ready = text.lines().map(str::to_owned).collect();
            if engine.ready == Some(true) {
                engine.not_ready.clear();
            }
        }
    }
    (engine, exposition)
}

/// Lines in a dead-letter file (0 when there is none).
fn count_lines(path: &std::path::Path) -> u64 {
    std::fs::read(path).map_or(0, |bytes| memchr::memchr_iter(b'\n', &bytes).count() as u64)
}

fn print_text(status: &Status) {
    match (&status.engine.metrics, status.engine.reachable) {
        (None, _) => println!("engine: no [metrics] listen configured, so no lag"),
        (Some(url), false) => println!("engine: {url} does not answer (not running?), so no lag"),
        (Some(url), true) => match status.engine.ready {
            Some(true) => println!("engine: {url}: ready"),
            _ => println!(
                "engine: {url}: NOT READY: {}",
                status.engine.not_ready.join("; ")
            ),
        },
    }
    let seconds = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}s"));
    for table in &status.tables {
        println!(
            "table {}: {} dead letter(s)",
            table.table, table.dead_letters
        );
        println!(
            "  {:<36} {:<24} {:>9} {:>9} {:>9} {:<16}",
            "shard", "position", "ckpt age", "read lag", "sink lag", "owner"
        );
        for shard in &table.shards {
            println!(
                "  {:<36} {:<24} {:>9} {:>9} {:>9} {:<16}",
                shard.shard,
                shard.position,
                shard
                    .checkpoint_age_seconds
                    .map_or_else(|| "-".to_owned(), |s| format!("{s}s")),
                seconds(shard.read_lag_seconds),
                seconds(shard.sink_lag_seconds),
                shard.owner.as_deref().unwrap_or("-"),
            );
        }
    }
}
