//! DynamoDB Streams: stream discovery, shard listing, iterators and GetRecords.

mod api;
pub(crate) mod credentials;
mod reader;
mod snapshot_gate;
mod table;

pub use api::{ShardInfo, ShardStart, StreamsApi, TableStream, ViewType};
pub use reader::{ReaderError, ReaderExit, ShardReader, ShardStatus};
pub use table::{run_table, TableContext, TableError, TableProgress};
