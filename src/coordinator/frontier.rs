//! The ordered-ack frontier of one shard: the checkpoint is the last sequence
//! number below which every chunk was acknowledged by every sink.

use std::collections::VecDeque;

use crate::model::SequenceNumber;

/// A misuse of the frontier: always a bug in the caller, reported rather than ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrontierError {
    /// An ack named a chunk that is not in flight (never registered, or already complete).
    #[error("chunk {0} is not in flight")]
    UnknownChunk(u64),
    /// A chunk was acknowledged more often than it has sinks.
    #[error("chunk {0} was acknowledged more times than it has sinks")]
    TooManyAcks(u64),
    /// A chunk's last sequence number does not follow the previous chunk's.
    #[error("chunk ending at {new} does not follow the previous chunk ending at {previous}")]
    OutOfOrder {
        /// Last sequence number of the previously registered chunk.
        previous: SequenceNumber,
        /// Last sequence number of the rejected chunk.
        new: SequenceNumber,
    },
}

#[derive(Debug)]
struct PendingChunk {
    id: u64,
    last: SequenceNumber,
    remaining: usize,
    /// Creation time of the chunk's oldest change (ms since the Unix epoch).
    oldest_ms: Option<i64>,
}

/// In-flight chunks of one shard, in read order.
#[derive(Debug, Default)]
pub struct ShardFrontier {
    pending: VecDeque<PendingChunk>,
    next_id: u64,
    checkpoint: Option<SequenceNumber>,
    last_registered: Option<SequenceNumber>,
    drained: bool,
}

impl ShardFrontier {
    /// A frontier resuming from `checkpoint` (nothing in flight).
    pub fn new(checkpoint: Option<SequenceNumber>) -> Self {
        Self {
            last_registered: checkpoint.clone(),
            checkpoint,
            ..Self::default()
        }
    }

    /// Registers a chunk whose records end at `last`, whose oldest change
    /// was made at `oldest_ms` (for lag), and that `acks_needed` sinks must
    /// acknowledge; returns its id. A chunk needing no acks (all its records
    /// were dead-lettered) completes at once. Returns whether the checkpoint
    /// advanced, too.
    pub fn register(
        &mut self,
        last: SequenceNumber,
        acks_needed: usize,
        oldest_ms: Option<i64>,
    ) -> Result<(u64, bool), FrontierError> {
        if let Some(previous) = &self.last_registered {
            if &last <= previous {
                return Err(FrontierError::OutOfOrder {
                    previous: previous.clone(),
                    new: last,
                });
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.last_registered = Some(last.clone());
        self.pending.push_back(PendingChunk {
            id,
            last,
            remaining: acks_needed,
            oldest_ms,
        });
        Ok((id, self.advance()))
    }

    /// Records one sink's acknowledgement of chunk `id`; returns whether the
    /// checkpoint advanced.
    pub fn ack(&mut self, id: u64) -> Result<bool, FrontierError> {
        let index = self
            .pending
            .binary_search_by_key(&id, |chunk| chunk.id)
            .map_err(|_| FrontierError::UnknownChunk(id))?;
        let chunk = &mut self.pending[index];
        chunk.remaining = chunk
            .remaining
            .checked_sub(1)
            .ok_or(FrontierError::TooManyAcks(id))?;
        Ok(self.advance())
    }

    fn advance(&mut self) -> bool {
        let mut advanced = false;
        while self
            .pending
            .front()
            .is_some_and(|chunk| chunk.remaining == 0)
        {
            if let Some(chunk) = self.pending.pop_front() {
                self.checkpoint = Some(chunk.last);
                advanced = true;
            }
        }
        advanced
    }

    /// The highest sequence number below which everything is acknowledged.
    pub fn checkpoint(&self) -> Option<&SequenceNumber> {
        self.checkpoint.as_ref()
    }

    /// Creation time of the oldest change not yet acknowledged by every sink.
    pub fn oldest_unacked_ms(&self) -> Option<i64> {
        self.pending
            .iter()
            .filter_map(|chunk| chunk.oldest_ms)
            .min()
    }

    /// Chunks still waiting for acknowledgements.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Marks the shard as read to its end (closed, no next iterator).
    pub fn mark_drained(&mut self) {
        self.drained = true;
    }

    /// True once the shard was read to its end and everything read is acknowledged.
    pub fn is_finished(&self) -> bool {
        self.drained && self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(n: u64) -> SequenceNumber {
        SequenceNumber::parse(&format!("1{n:020}")).unwrap()
    }

    #[test]
    fn checkpoint_waits_for_the_oldest_chunk() {
        let mut frontier = ShardFrontier::new(None);
        let (a, _) = frontier.register(seq(10), 2, None).unwrap();
        let (b, _) = frontier.register(seq(20), 2, None).unwrap();
        assert!(!frontier.ack(b).unwrap());
        assert!(!frontier.ack(b).unwrap());
        assert_eq!(frontier.checkpoint(), None);
        assert!(!frontier.ack(a).unwrap());
        assert!(frontier.ack(a).unwrap());
        assert_eq!(frontier.checkpoint(), Some(&seq(20)));
        assert_eq!(frontier.in_flight(), 0);
    }

    #[test]
    fn chunks_without_sinks_complete_at_once() {
        let mut frontier = ShardFrontier::new(Some(seq(1)));
        let (_, advanced) = frontier.register(seq(5), 0, None).unwrap();
        assert!(advanced);
        assert_eq!(frontier.checkpoint(), Some(&seq(5)));
    }

    #[test]
    fn misuse_is_reported() {
        let mut frontier = ShardFrontier::new(Some(seq(9)));
        assert!(matches!(
            frontier.register(seq(9), 1, None),
            Err(FrontierError::OutOfOrder { .. })
        ));
        let (id, _) = frontier.register(seq(10), 1, None).unwrap();
        frontier.ack(id).unwrap();
        assert_eq!(frontier.ack(id), Err(FrontierError::UnknownChunk(id)));
        assert_eq!(frontier.ack(99), Err(FrontierError::UnknownChunk(99)));
    }

    #[test]
    fn finished_needs_drained_and_all_acked() {
        let mut frontier = ShardFrontier::new(None);
        let (id, _) = frontier.register(seq(1), 1, None).unwrap();
        frontier.mark_drained();
        assert!(!frontier.is_finished());
        frontier.ack(id).unwrap();
        assert!(frontier.is_finished());
    }
}
