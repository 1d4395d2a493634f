//! DynamoDB Streams: stream discovery, shard listing, iterators and GetRecords.

mod api;
mod shards;

pub use api::{StreamsApi, TableStream, ViewType};
pub use shards::StreamsShards;
