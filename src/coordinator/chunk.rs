//! A chunk: the decoded changes of one source page, shared by every sink.

use std::sync::Arc;

use super::tracker::AckHandle;
use crate::model::ChangeEvent;

/// The changes of one GetRecords page of one shard, in stream order.
/// Every sink receives the same `Arc<Chunk>` and acknowledges it through
/// `ack` once its records are durable.
#[derive(Debug)]
pub struct Chunk {
    /// Source table.
    pub table: Arc<str>,
    /// The decoded changes (records that failed to decode are already dead-lettered).
    pub events: Vec<ChangeEvent>,
    /// Sum of the records' `SizeBytes`, for batch sizing.
    pub bytes: u64,
    /// Acknowledgement handle.
    pub ack: AckHandle,
    /// Set on the chunk that ends a snapshot of `table` (it has no events):
    /// rows of the table with a version below this one were not in the
    /// snapshot, so the items are gone; state-keeping sinks delete them.
    pub sweep_below: Option<crate::model::SequenceNumber>,
}

impl Chunk {
    /// True for a page of a table snapshot (`read` events): it carries no
    /// stream position, so sinks must not record it as a shard checkpoint.
    pub fn is_snapshot(&self) -> bool {
        self.events
            .first()
            .is_some_and(|e| e.op == crate::model::Op::Read)
    }
}
