//! The SQS message announcing one landed object.

use serde::{Deserialize, Serialize};

/// What a loader needs to find and check an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectNotice {
    /// Bucket.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// Source table.
    pub table: String,
    /// Shard the changes came from.
    pub shard: String,
    /// Number of change events (lines) in the object.
    pub records: usize,
    /// Sequence number of the first change.
    pub first_sequence: String,
    /// Sequence number of the last change.
    pub last_sequence: String,
    /// `jsonl.gz`.
    pub format: String,
}
