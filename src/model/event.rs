//! One change of one item, as read from a stream.

use std::sync::Arc;

use serde::Serialize;

use super::{Image, Item, SequenceNumber};

/// What happened to the item.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// A new item was written (`INSERT`).
    Insert,
    /// An existing item changed (`MODIFY`).
    Modify,
    /// The item was deleted (`REMOVE`), by a user or by TTL.
    Remove,
    /// The item as read by a table snapshot (Debezium's `r`): not a change,
    /// its current state, versioned below the stream changes that follow.
    Read,
}

impl Op {
    /// True for the operations after which the item exists.
    pub fn is_upsert(self) -> bool {
        !matches!(self, Op::Remove)
    }

    /// The lower-case name used in change logs: insert, modify, remove, read.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Modify => "modify",
            Op::Remove => "remove",
            Op::Read => "read",
        }
    }
}

/// Where a change sits in its stream: the shard and the sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Position {
    /// Shard id within the stream.
    pub shard: Arc<str>,
    /// Sequence number within the shard.
    #[serde(serialize_with = "serialize_sequence")]
    pub sequence: SequenceNumber,
}

fn serialize_sequence<S: serde::Serializer>(
    sequence: &SequenceNumber,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(sequence.as_str())
}

/// One decoded change of one item.
///
/// `version` orders the changes of one item in the sinks. For DynamoDB
/// Streams it is the record's sequence number, which grows with every change
/// of an item within a shard and across a parent-to-child shard handoff
/// (checked at each handoff). For Kinesis it is derived from
/// ApproximateCreationDateTime (see `decode::kinesis`), and the position's
/// sequence number is Kinesis's own, a place in the shard only. A version
/// has at most [`super::sequence::VERSION_DIGITS`] digits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeEvent {
    /// Source table name.
    pub table: Arc<str>,
    /// Insert, modify or remove.
    pub op: Op,
    /// The item's primary key attributes.
    pub keys: Item,
    /// The item after the change, when the stream view carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_image: Option<Image>,
    /// The item before the change, when the stream view carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_image: Option<Image>,
    /// Shard and sequence number: where the change sits in its stream.
    pub position: Position,
    /// The number that orders this change among the changes of its item.
    #[serde(skip)]
    pub version: SequenceNumber,
    /// Approximate time of the change, milliseconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approx_time_ms: Option<i64>,
    /// True when DynamoDB's TTL process deleted the item.
    pub ttl_delete: bool,
    /// The stream record's event id.
    pub event_id: String,
    /// Size of the stream record as DynamoDB reports it (`SizeBytes`).
    pub size_bytes: u64,
}

impl ChangeEvent {
    /// The version that orders this change among the changes of its item.
    pub fn version(&self) -> &SequenceNumber {
        &self.version
    }
}
