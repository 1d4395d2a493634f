//! Shard ownership: between "this shard is ready to read" and "start its
//! reader" sits an [`Ownership`], which decides which ready shards this
//! process reads and keeps their checkpoints.
//!
//! [`EmbeddedOwnership`] is the default: one process owns every shard and
//! checkpoints go to the SQLite store in `state_dir`. A lease table shared
//! by many workers plugs in behind the same trait; each claimed shard
//! comes with its own stop token, so losing one lease stops one reader.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use super::lineage::ShardNode;
use super::store::{CheckpointStore, ShardCheckpoint};
use super::tracker::CheckpointUpdate;
use crate::future::BoxFuture;

/// Why ownership or checkpoint state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    /// The embedded checkpoint store failed.
    #[error(transparent)]
    Store(#[from] super::store::StoreError),
    /// The blocking task that used the checkpoint store panicked or was
    /// cancelled.
    #[error("checkpoint store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The lease table failed (the error names the table and the call).
    #[error(transparent)]
    Leases(#[from] super::lease::LeaseTableError),
}

/// What is stored for one stream: each shard's checkpoint, and the other
/// streams the table has checkpoints for (a replaced stream).
#[derive(Debug, Default)]
pub struct StreamState {
    /// Checkpoints by shard id.
    pub checkpoints: HashMap<String, ShardCheckpoint>,
    /// Other streams of the same table with checkpoints.
    pub other_streams: Vec<String>,
}

/// A shard this process may read, until `stop` is cancelled (shutdown, or
/// the shard's lease was lost).
#[derive(Debug)]
pub struct Claimed {
    /// Shard id.
    pub shard: String,
    /// Cancelled when this process must stop reading the shard.
    pub stop: CancellationToken,
    /// The shard's checkpoint as the owner found it (a lease's, which
    /// another worker may have moved); `None`: the loaded one applies.
    pub checkpoint: Option<ShardCheckpoint>,
}

/// Decides which ready shards this process reads, and keeps checkpoints.
pub trait Ownership: Send + Sync {
    /// The stored state of `stream` (whose table is `table`).
    fn load<'a>(
        &'a self,
        stream: &'a str,
        table: &'a str,
    ) -> BoxFuture<'a, Result<StreamState, OwnershipError>>;

    /// Of the `ready` shards of `stream` (none being read by this process),
    /// those this process reads now.
    fn claim<'a>(
        &'a self,
        stream: &'a str,
        table: &'a str,
        ready: &'a [ShardNode],
    ) -> BoxFuture<'a, Result<Vec<Claimed>, OwnershipError>>;

    /// Persists checkpoints. An implementation with leases writes only
    /// those of shards this process still owns.
    fn save(&self, updates: Vec<CheckpointUpdate>) -> BoxFuture<'_, Result<(), OwnershipError>>;

    /// Records the closed `shards` of `stream` (whose table is `table`) as
    /// finished without reading them: a first start at `latest`, where
    /// they hold only old changes. Where the shared state already records
    /// a shard (another worker created its lease), it is left as it is.
    fn skip_closed<'a>(
        &'a self,
        stream: &'a str,
        table: &'a str,
        shards: &'a [ShardNode],
    ) -> BoxFuture<'a, Result<(), OwnershipError>>;

    /// Resolves when this process may have gained shards to claim (a lease
    /// taken); never, when ownership does not change while running.
    fn changed(&self) -> BoxFuture<'_, ()>;

    /// For `--exit-when-caught-up`: true when the `unclaimed` ready shards
    /// of `stream` (ready, but not read by this process) are being read by
    /// live owners elsewhere, so this process is not waiting for them.
    fn settled(&self, stream: &str, unclaimed: &[ShardNode]) -> bool;
}

/// One process owns every shard; checkpoints live in the embedded store.
pub struct EmbeddedOwnership {
    store: Arc<Mutex<CheckpointStore>>,
    shutdown: CancellationToken,
}

impl EmbeddedOwnership {
    /// Ownership over `store`; every reader stops with `shutdown`.
    pub fn new(store: Arc<Mutex<CheckpointStore>>, shutdown: CancellationToken) -> Self {
        Self { store, shutdown }
    }

    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut CheckpointStore) -> Result<T, super::store::StoreError> + Send + 'static,
    ) -> Result<T, OwnershipError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            f(&mut store.lock().unwrap_or_else(PoisonError::into_inner))
        })
        .await?
        .map_err(OwnershipError::from)
    }
}

impl Ownership for EmbeddedOwnership {
    fn load<'a>(
        &'a self,
        stream: &'a str,
        table: &'a str,
    ) -> BoxFuture<'a, Result<StreamState, OwnershipError>> {
        let (stream, table) = (stream.to_owned(), table.to_owned());
        Box::pin(self.with_store(move |store| {
            let checkpoints = store.load(&stream)?;
            let other_streams = store
                .streams_of(&table)?
                .into_iter()
                .filter(|s| *s != stream)
                .collect();
            Ok(StreamState {
                checkpoints,
                other_streams,
            })
        }))
    }

    fn claim<'a>(
        &'a self,
        _stream: &'a str,
        _table: &'a str,
        ready: &'a [ShardNode],
    ) -> BoxFuture<'a, Result<Vec<Claimed>, OwnershipError>> {
        let claimed = ready
            .iter()
            .map(|shard| Claimed {
                shard: shard.id.clone(),
                stop: self.shutdown.child_token(),
                checkpoint: None,
            })
            .collect();
        Box::pin(std::future::ready(Ok(claimed)))
    }

    fn save(&self, updates: Vec<CheckpointUpdate>) -> BoxFuture<'_, Result<(), OwnershipError>> {
        Box::pin(self.with_store(move |store| store.save(&updates)))
    }

    fn skip_closed<'a>(
        &'a self,
        stream: &'a str,
        table: &'a str,
        shards: &'a [ShardNode],
    ) -> BoxFuture<'a, Result<(), OwnershipError>> {
        let updates = shards
            .iter()
            .map(|shard| CheckpointUpdate {
                key: super::ShardKey {
                    stream: Arc::from(stream),
                    shard: Arc::from(shard.id.as_str()),
                },
                table: Arc::from(table),
                sequence: None,
                finished: true,
            })
            .collect();
        self.save(updates)
    }

    fn changed(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }

    fn settled(&self, _stream: &str, unclaimed: &[ShardNode]) -> bool {
        unclaimed.is_empty()
    }
}
