//! The `kafka` sink: one keyed record per change in a topic per table, in a
//! Debezium, DynamoDB-stream or plain envelope, with a tombstone after each
//! delete, through an idempotent producer whose delivery reports are the
//! acknowledgements — or, with `delivery = "exactly_once"`, through one
//! transactional producer per shard whose transactions hold the records
//! and the shard's checkpoint.

mod config;
mod envelope;
mod exactly_once;
mod records;
mod scope;
mod transaction;
mod writer;

pub use config::{Delivery, KafkaSinkConfig};
pub use envelope::{debezium_op, record_key, record_value, Envelope};
pub use writer::KafkaSink;
