//! The `kafka` sink: one keyed record per change in a topic per table, in a
//! Debezium, DynamoDB-stream or plain envelope, with a tombstone after each
//! delete, through an idempotent producer whose delivery reports are the
//! acknowledgements.

mod config;
mod envelope;
mod writer;

pub use config::KafkaSinkConfig;
pub use envelope::{debezium_op, record_key, record_value, Envelope};
pub use writer::KafkaSink;
