//! `dynamo-cdc checkpoints import`: a KCL application's checkpoints become
//! this pipeline's, so that a team replacing a KCL consumer neither reads
//! again nor skips anything. Into the embedded store, or the lease table
//! when the pipeline uses one.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use crate::config::{CoordinatorMode, PipelineConfig, TableConfig};
use crate::coordinator::lease::kcl::{read_kcl_lease, KclLease, KclPosition};
use crate::coordinator::lease::table::{HEARTBEAT_PREFIX, SHARD_END};
use crate::coordinator::lease::{lease_key, LeaseTable, Written};
use crate::coordinator::{CheckpointStore, CheckpointUpdate, ShardKey};
use crate::source::registry;
use crate::source::streams::StreamsApi;

/// Where an imported shard goes: the stream id (as this pipeline names it)
/// and the table.
struct Target {
    stream: String,
    table: String,
}

/// Imports the KCL lease table `kcl_table`; single-stream KCL leases (a
/// shard id as key) belong to `table`.
pub(super) async fn import(
    pipeline: &PipelineConfig,
    kcl_table: &str,
    table: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let api = StreamsApi::connect(&pipeline.aws, &pipeline.source).await?;
    let source = LeaseTable::new(api.dynamodb_client().clone(), kcl_table);
    let leases = source
        .scan(true)
        .await
        .with_context(|| format!("reading the KCL lease table {kcl_table}"))?;
    let single = match table {
        Some(name) => Some(target_of(pipeline, &api, name).await?),
        None => None,
    };
    let mut imported: Vec<(Target, KclLease)> = Vec::new();
    let (mut skipped, mut untouched) = (Vec::new(), 0usize);
    for lease in leases
        .iter()
        .filter(|l| !l.key.starts_with(HEARTBEAT_PREFIX))
    {
        let kcl = read_kcl_lease(lease)?;
        let target = match &kcl.stream {
            Some(stream) => kinesis_target(pipeline, stream).with_context(|| {
                format!("KCL lease {}: stream {stream} is not a kinesis_stream of any [[tables]] entry", lease.key)
            })?,
            None => match &single {
                Some(target) => Target {
                    stream: target.stream.clone(),
                    table: target.table.clone(),
                },
                None => anyhow::bail!(
                    "KCL lease {} names only a shard: say which table's stream the KCL application read with --table",
                    lease.key
                ),
            },
        };
        match kcl.position {
            KclPosition::TrimHorizon => untouched += 1,
            KclPosition::Latest => skipped.push(format!(
                "{}: LATEST without a checkpoint (the table's start_position applies)",
                kcl.shard
            )),
            KclPosition::After(_) | KclPosition::Finished => imported.push((target, kcl)),
        }
    }
    let count = imported.len();
    match pipeline.coordinator.mode {
        CoordinatorMode::Embedded => save_embedded(pipeline, &imported)?,
        CoordinatorMode::LeaseTable => save_leases(pipeline, &api, &imported).await?,
    }
    println!("imported {count} checkpoint(s) from {kcl_table}; {untouched} shard(s) at TRIM_HORIZON read from their start");
    for note in skipped {
        println!("not imported: {note}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn target_of(
    pipeline: &PipelineConfig,
    api: &StreamsApi,
    name: &str,
) -> anyhow::Result<Target> {
    let table: &TableConfig = pipeline
        .tables
        .iter()
        .find(|t| t.name == name)
        .with_context(|| format!("--table {name}: no [[tables]] entry has that name"))?;
    let stream = registry::checkpoint_stream(api, table).await?;
    Ok(Target {
        stream,
        table: name.to_owned(),
    })
}

fn kinesis_target(pipeline: &PipelineConfig, stream: &str) -> Option<Target> {
    pipeline.tables.iter().find_map(|t| {
        let configured = registry::configured_stream(t)?;
        (configured == stream || configured.ends_with(&format!(":stream/{stream}"))).then(|| {
            Target {
                stream: configured.to_owned(),
                table: t.name.clone(),
            }
        })
    })
}

fn save_embedded(pipeline: &PipelineConfig, imported: &[(Target, KclLease)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(&pipeline.state_dir)
        .with_context(|| format!("creating {}", pipeline.state_dir.display()))?;
    let mut store = CheckpointStore::open(&CheckpointStore::path_in(&pipeline.state_dir))?;
    let updates: Vec<CheckpointUpdate> = imported
        .iter()
        .map(|(target, kcl)| CheckpointUpdate {
            key: ShardKey {
                stream: Arc::from(target.stream.as_str()),
                shard: Arc::from(kcl.shard.as_str()),
            },
            table: Arc::from(target.table.as_str()),
            sequence: match &kcl.position {
                KclPosition::After(sequence) => Some(sequence.clone()),
                _ => None,
            },
            finished: kcl.position == KclPosition::Finished,
        })
        .collect();
    store.save(&updates)?;
    Ok(())
}

async fn save_leases(
    pipeline: &PipelineConfig,
    api: &StreamsApi,
    imported: &[(Target, KclLease)],
) -> anyhow::Result<()> {
    let leases = LeaseTable::new(
        api.dynamodb_client().clone(),
        &pipeline.coordinator.lease_table,
    );
    leases.ensure_exists().await?;
    for (target, kcl) in imported {
        let key = lease_key(&target.stream, &kcl.shard);
        let parents: Vec<String> = kcl
            .parents
            .iter()
            .map(|p| lease_key(&target.stream, p))
            .collect();
        let checkpoint = match &kcl.position {
            KclPosition::After(sequence) => sequence.as_str().to_owned(),
            _ => SHARD_END.to_owned(),
        };
        let extra = [
            ("table", target.table.as_str()),
            ("stream", target.stream.as_str()),
            ("shard", kcl.shard.as_str()),
        ];
        if leases
            .import_lease(&key, &parents, &checkpoint, &extra)
            .await?
            == Written::Lost
        {
            anyhow::bail!(
                "lease {key} is owned by a running worker: stop the fleet before importing"
            );
        }
    }
    Ok(())
}
