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

impl Encoding {
    /// The records of `event` in order, or why it cannot be written
    /// (a refusal: the change goes to the dead letters).
    pub fn records(&self, event: &ChangeEvent, now_ms: i64) -> Result<Vec<OutRecord>, String> {
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
        let tombstone =
            !event.op.is_upsert() && self.tombstones && self.envelope != Envelope::Plain;
        let mut records = Vec::with_capacity(1 + usize::from(tombstone));
        if tombstone {
            records.push(OutRecord {
                key: key.clone(),
                value,
                headers: Some(headers),
            });
            records.push(OutRecord {
                key,
                value: None,
                headers: None,
            });
        } else {
            records.push(OutRecord {
                key,
                value,
                headers: Some(headers),
            });
        }
        Ok(records)
    }
}
