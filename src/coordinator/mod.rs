//! Shard lineage, ordered acknowledgements and checkpoints.
//!
//! The decision logic ([`frontier`], [`lineage`]) is pure and unit-tested
//! without a network; [`tracker`] shares it between readers and sinks, and
//! [`store`] persists checkpoints in an embedded SQLite file.

pub mod chunk;
pub mod frontier;
pub mod lease;
pub mod lineage;
pub mod ownership;
pub mod publish;
pub mod snapshot_state;
pub mod snapshot_store;
pub mod store;
pub mod tracker;

pub use chunk::Chunk;
pub use frontier::{FrontierError, ShardFrontier};
pub use lineage::{ready_shards, ShardNode};
pub use ownership::{Claimed, EmbeddedOwnership, Ownership, OwnershipError, StreamState};
pub use publish::{publish, publish_blocking, Fanout, Outgoing, PublishError, SinkSenders};
pub use snapshot_state::{
    ClaimedSegment, EmbeddedSnapshots, GateState, SegmentsView, SnapshotBegin, SnapshotState,
};
pub use snapshot_store::{SegmentProgress, SnapshotPhase, SnapshotRecord, SnapshotStart};
pub use store::{CheckpointRow, CheckpointStore, ShardCheckpoint, StoreError};
pub use tracker::{AckHandle, AckTracker, CheckpointUpdate, ShardKey};

#[cfg(test)]
mod simulation_tests;
