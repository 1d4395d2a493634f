//! The shard-reading core every shard-based source shares: discovery,
//! lineage, one reader per ready shard, idle backoff, iterator renewal,
//! trim handling, dead letters and publishing (ordered acks, checkpoints).

mod deliver;
mod gate;
mod plan;
mod reader;
mod runner;
mod start;

pub use reader::{ReaderError, ReaderExit, ShardReader, ShardStatus};
pub use runner::{run_table, TableContext, TableError, TableProgress};
