//! Kinesis Data Streams carrying DynamoDB changes (a table's Kinesis
//! streaming destination), behind the shard-source seam. One stream may
//! carry several tables; records are routed by `tableName`.

mod page;
mod shards;

pub use page::KinesisPage;
pub use shards::KinesisShards;
