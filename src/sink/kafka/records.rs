//! The Kafka records of one change, shared by both delivery modes: the
//! change itself (keyed, with `op`, `table` and `sequence` headers) and,
//! after a delete, a tombstone.

use rdkafka::message::{Header, OwnedHeaders};

use super::envelope::{record_key, record_value, Envelope};
use crate::model::ChangeEvent;

/// How the sink turns changes into records.
#[derive(Debug, Clone, Copy)]
pub(super) struct Encoding {
    /// The shape of values.
    pub envelope: Envelope,
    /// Whether a tombstone follows each delete.
    pub tombstones: bool,
}

/// One record to send.
pub(super) struct OutRecord {
    /// The item's key as JSON.
    pub key: String,
    /// The value; `None` for a record without one (a tombstone).
    pub value: Option<String>,
    /// The change's headers; `None` on a tombstone.
    pub headers: Option<OwnedHeaders>,
}

/// The records of one change: the change itself, and whether a tombstone
/// (its key, no value, no headers) follows it.
pub(super) struct Encoded {
    /// The change's record.
    pub change: OutRecord,
    /// A tombstone follows (a delete, with tombstones on).
    pub tombstone: bool,
}

impl Encoded {
    /// The tombstone record, if one follows.
    pub fn tombstone_record(&self) -> Option<OutRecord> {
        self.tombstone.then(|| OutRecord {
            key: self.change.key.clone(),
            value: None,
            headers: None,
        })
    }
}

impl Encoding {
    /// The records of `event`, or why it cannot be written (a refusal:
    /// the change goes to the dead letters).
    pub fn encode(&self, event: &ChangeEvent, now_ms: i64) -> Result<Encoded, String> {
        let key = record_key(event);
        let value = record_value(event, self.envelope, now_ms)?;
        let headers = OwnedHeaders::new_with_capacity(3)
            .insert(Header {
                key: "op",
                value: Some(event.op.as_str()),
            })
            .insert(Header {
                key: "table",
                value: Some(&*event.table),
            })
            .insert(Header {
                key: "sequence",
                value: Some(event.position.sequence.as_str()),
            });
        Ok(Encoded {
            change: OutRecord {
                key,
                value,
                headers: Some(headers),
            },
            tombstone: !event.op.is_upsert() && self.tombstones && self.envelope != Envelope::Plain,
        })
    }
}
