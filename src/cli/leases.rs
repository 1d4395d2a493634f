//! `checkpoints show` for a fleet on a lease table: each shard's lease
//! (owner, counter, checkpoint and its age), the workers' heartbeats, and
//! each table's snapshot (phase, segments done, who scans them).

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::PipelineConfig;
use crate::coordinator::lease::table::{HEARTBEAT_PREFIX, SNAPSHOT_PREFIX};
use crate::coordinator::lease::{Lease, LeaseTable};
use crate::source::streams::StreamsApi;

/// Prints the lease table of `pipeline` as a table or as JSON lines.
pub(super) async fn show_leases(pipeline: &PipelineConfig, json: bool) -> anyhow::Result<ExitCode> {
    let api = StreamsApi::connect(&pipeline.aws, &pipeline.source).await?;
    let name = &pipeline.coordinator.lease_table;
    let table = LeaseTable::new(api.dynamodb_client().clone(), name);
    let mut items = table.scan(true).await?;
    items.retain(|l| !l.key.starts_with(SNAPSHOT_PREFIX));
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
        show_snapshots(pipeline, &table, true).await?;
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
    show_snapshots(pipeline, &table, false).await?;
    Ok(ExitCode::SUCCESS)
}

/// Prints each configured table's snapshot kept in the lease table.
async fn show_snapshots(
    pipeline: &PipelineConfig,
    leases: &LeaseTable,
    json: bool,
) -> anyhow::Result<()> {
    for config in &pipeline.tables {
        let Some(item) = leases.snapshot_item(&config.name).await? else {
            continue;
        };
        let segments: Vec<_> = leases
            .segment_items(&config.name, item.segments)
            .await?
            .into_iter()
            .filter(|s| Some(&s.run) == item.run.as_ref())
            .collect();
        let done = segments.iter().filter(|s| s.done).count();
        let items: u64 = segments.iter().map(|s| s.items).sum();
        let scanning: Vec<String> = segments
            .iter()
            .filter(|s| !s.done)
            .filter_map(|s| Some(format!("{}:{}", s.segment, s.owner.as_deref()?)))
            .collect();
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "snapshot": config.name,
                    "state": item.state,
                    "reason": item.reason,
                    "segments": item.segments,
                    "segments_done": done,
                    "items": items,
                    "scanning": scanning,
                })
            );
        } else {
            println!(
                "snapshot of {}: {}, {done}/{} segment(s) done, {items} item(s){}{}",
                config.name,
                item.state,
                item.segments,
                item.reason.map(|r| format!(" ({r})")).unwrap_or_default(),
                if scanning.is_empty() {
                    String::new()
                } else {
                    format!(", scanning (segment:worker) {}", scanning.join(" "))
                }
            );
        }
    }
    Ok(())
}
