//! Errors that stop the engine, each naming what failed.

use crate::coordinator::StoreError;
use crate::sink::SinkError;
use crate::source::streams::ViewType;
use crate::source::SourceError;

impl EngineError {
    /// True when the engine stopped so that a table is snapshotted again at
    /// the next start (`snapshot = "when_needed"` after trimmed changes).
    pub fn wants_restart(&self) -> bool {
        matches!(
            self,
            EngineError::Table(crate::source::shards::TableError::SnapshotRequested { .. })
        )
    }
}

/// Why the engine stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The state directory could not be created.
    #[error("state_dir {path}: {source}")]
    StateDir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The checkpoint store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Checkpoints could not be written through the shard ownership.
    #[error(transparent)]
    Ownership(#[from] crate::coordinator::OwnershipError),
    /// AWS could not be reached or refused a call at start.
    #[error("table {table}: {source} (endpoint {endpoint})")]
    Source {
        /// Source table.
        table: String,
        /// The endpoint.
        endpoint: String,
        /// The failure.
        source: SourceError,
    },
    /// AWS client configuration failed.
    #[error("AWS configuration: {0}")]
    Aws(SourceError),
    /// The table's stream does not carry what the sinks need.
    #[error("table {table}: the stream's view type is {view:?}, but the sinks need the new image of each item: set StreamViewType to NEW_AND_OLD_IMAGES (or NEW_IMAGE)")]
    ViewType {
        /// Source table.
        table: String,
        /// The view type.
        view: ViewType,
    },
    /// A sink failed for good.
    #[error("sink {0}")]
    Sink(#[from] SinkError),
    /// A table runner failed.
    #[error(transparent)]
    Table(#[from] crate::source::shards::TableError),
    /// A table named on the command line is not in the config.
    #[error("table {table} is not in the config (its tables: {known})")]
    UnknownTable {
        /// The name given.
        table: String,
        /// The configured tables.
        known: String,
    },
    /// A replay stopped (its input, its dead letters or its sinks).
    #[error("replay: {0}")]
    Replay(#[from] super::replay_error::ReplayError),
    /// A task of the engine panicked or was aborted.
    #[error("{task} failed unexpectedly: {source}")]
    Task {
        /// The task (`sink task`, `checkpoint writer`, `lease loop`).
        task: &'static str,
        /// How it ended.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The lease table could not be used (created, read or released).
    #[error("lease table: {0}")]
    Leases(#[from] crate::coordinator::lease::LeaseTableError),
    /// Changes could not be handed to the sinks.
    #[error(transparent)]
    Publish(#[from] crate::coordinator::PublishError),
    /// The configuration cannot be used (found when starting, after validation).
    #[error("configuration: {0}")]
    Config(String),
    /// A dimension table could not be loaded at start.
    #[error("dimension {name}: {source}")]
    Dimension {
        /// The dimension's name.
        name: String,
        /// Why.
        source: crate::dimension::DimensionError,
    },
    /// The metrics endpoint could not start.
    #[error(transparent)]
    Observe(#[from] super::metrics_server::ObserveError),
}
