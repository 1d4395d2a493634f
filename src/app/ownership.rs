//! Building the shard ownership a run uses: embedded (the default), or a
//! lease table shared with other workers, whose balancing loop runs beside
//! the engine and releases every lease after the last checkpoint flush.

use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::EngineError;
use crate::config::{CoordinatorMode, PipelineConfig};
use crate::coordinator::lease::{
    BalanceSettings, LeaseOwnership, LeaseSnapshots, LeaseTable, LeaseTableError,
};
use crate::coordinator::{
    CheckpointStore, EmbeddedOwnership, EmbeddedSnapshots, Ownership, SnapshotState,
};
use crate::source::streams::StreamsApi;

/// The ownership of a run, and the lease loop when there is one.
pub(super) struct OwnershipRuntime {
    /// Which shards this process reads; their checkpoints.
    pub(super) ownership: Arc<dyn Ownership>,
    /// Where snapshot state lives (beside the checkpoints).
    pub(super) snapshots: Arc<dyn SnapshotState>,
    lease_loop: Option<(CancellationToken, JoinHandle<Result<(), LeaseTableError>>)>,
}

/// Builds the configured ownership; readers stop with `shutdown`.
pub(super) async fn start(
    config: &PipelineConfig,
    api: &StreamsApi,
    store: &Arc<Mutex<CheckpointStore>>,
    shutdown: &CancellationToken,
) -> Result<OwnershipRuntime, EngineError> {
    let coordinator = &config.coordinator;
    if coordinator.mode == CoordinatorMode::Embedded {
        return Ok(OwnershipRuntime {
            ownership: Arc::new(EmbeddedOwnership::new(Arc::clone(store), shutdown.clone())),
            snapshots: Arc::new(EmbeddedSnapshots::new(Arc::clone(store))),
            lease_loop: None,
        });
    }
    let table = LeaseTable::new(api.dynamodb_client().clone(), &coordinator.lease_table);
    table.ensure_exists().await.map_err(EngineError::Leases)?;
    let worker = coordinator.worker();
    tracing::info!(
        worker = %worker,
        lease_table = %coordinator.lease_table,
        lease_duration = ?coordinator.lease_duration,
        "sharing shards through the lease table"
    );
    let settings = BalanceSettings {
        lease_duration: coordinator.lease_duration,
        max_steals: coordinator.max_steals_per_cycle,
    };
    let leases = LeaseOwnership::new(
        table.clone(),
        &worker,
        settings,
        Some(coordinator.handover_check_interval),
        shutdown.clone(),
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(Arc::clone(&leases).run(stop.clone()));
    let snapshots = LeaseSnapshots::new(table, Arc::clone(&leases), coordinator.lease_duration);
    Ok(OwnershipRuntime {
        ownership: leases,
        snapshots: Arc::new(snapshots),
        lease_loop: Some((stop, task)),
    })
}

impl OwnershipRuntime {
    /// After the last checkpoint flush: stops the lease loop, which writes
    /// the pending checkpoints and releases every lease.
    pub(super) async fn finish(self) -> Result<(), EngineError> {
        let Some((stop, task)) = self.lease_loop else {
            return Ok(());
        };
        stop.cancel();
        match task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(EngineError::Leases(err)),
            Err(source) => Err(EngineError::Task {
                task: "lease loop",
                source,
            }),
        }
    }
}
