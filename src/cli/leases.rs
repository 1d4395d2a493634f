//! `checkpoints show` for a fleet on a lease table: each shard's lease
//! (owner, counter, checkpoint and its age) and the workers' heartbeats.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::PipelineConfig;
use crate::coordinator::lease::table::HEARTBEAT_PREFIX;
use crate::coordinator::lease::{Lease, LeaseTable};
use crate::source::streams::StreamsApi;

/// Prints the lease table of `pipeline` as a table or as JSON lines.
pub(super) async fn show_leases(pipeline: &PipelineConfig, json: bool) -> anyhow::Result<ExitCode> {
    let api = StreamsApi::connect(&pipeline.aws, &pipeline.source).await?;
    let name = &pipeline.coordinator.lease_table;
    let table = LeaseTable::new(api.dynamodb_client().clone(), name);
    let items = table.scan(true).await?;
    let (workers, leases): (Vec<Lease>, Vec<Lease>) = items
        .into_iter()
        .partition(|l| l.key.starts_with(HEARTBEAT_PREFIX));
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let age = |lease: &Lease| {
        lease.checkpointed_at_ms.map(|at| {
            humantime::format_duration(Duration::from_secs(now_ms.saturating_sub(at) / 1000))
                .to_string()
        })
    };
    if json {
        for lease in &leases {
            println!(
                "{}",
                serde_json::json!({
                    "lease": lease.key,
                    "table": lease.table,
                    "owner": lease.owner,
                    "counter": lease.counter,
                    "checkpoint": lease.checkpoint,
                    "checkpoint_age_seconds": lease.checkpointed_at_ms.map(|at| now_ms.saturating_sub(at) / 1000),
                    "parents": lease.parents,
                })
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "lease table {name}: {} shard lease(s), {} worker(s)",
        leases.len(),
        workers.len()
    );
    println!(
        "{:<20} {:<16} {:>8} {:<42} {:<10} lease",
        "table", "owner", "counter", "checkpoint", "age"
    );
    for lease in &leases {
        println!(
            "{:<20} {:<16} {:>8} {:<42} {:<10} {}",
            lease.table.as_deref().unwrap_or("-"),
            lease.owner.as_deref().unwrap_or("-"),
            lease.counter,
            lease.checkpoint,
            age(lease).unwrap_or_else(|| "-".to_owned()),
            lease.key
        );
    }
    for worker in &workers {
        let id = worker.owner.as_deref().unwrap_or("?");
        let held = leases
            .iter()
            .filter(|l| l.owner.as_deref() == Some(id))
            .count();
        println!(
            "worker {id}: {held} lease(s), heartbeat counter {}",
            worker.counter
        );
    }
    Ok(ExitCode::SUCCESS)
}
