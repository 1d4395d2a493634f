//! Sources: only this layer talks to the stream APIs.
//!
//! [`shard`] is the seam: a [`shard::ShardSource`] (DynamoDB Streams in
//! [`streams`], Kinesis in `kinesis`) lists shards, opens iterators, reads
//! and decodes pages; [`shards`] is the core that drives any of them, and
//! [`registry`] is the one place that picks a table's source.

pub mod error;
#[cfg(feature = "kinesis")]
pub mod kinesis;
pub mod registry;
pub mod retry;
pub mod shard;
pub mod shards;
pub mod signed;
pub mod snapshot;
pub mod streams;

pub use error::SourceError;
