//! Publishing a chunk: register it with the ack tracker, then hand it to
//! every sink. Every path that produces changes (stream readers, snapshots,
//! replay, the loader) goes through here, so "a position is checkpointed
//! only once every sink acknowledged it" is written once.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::chunk::Chunk;
use super::frontier::FrontierError;
use super::tracker::{AckTracker, ShardKey};
use crate::model::{ChangeEvent, SequenceNumber};

/// One channel per sink, with the sink's name (for messages).
pub type SinkSenders = Arc<[(String, mpsc::Sender<Arc<Chunk>>)]>;

/// Why a chunk could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The tracker refused the chunk (positions must grow within a shard).
    #[error("registering a chunk of {stream}/{shard}: {source}")]
    Register {
        /// Stream (or label) of the shard.
        stream: String,
        /// Shard id.
        shard: String,
        /// The tracker's reason.
        source: FrontierError,
    },
    /// A sink stopped accepting chunks (it failed; its own error says why).
    #[error("sink {sink} stopped")]
    SinkGone {
        /// The sink's name.
        sink: String,
    },
}

/// What to publish: the changes of one table that end at one position.
#[derive(Debug)]
pub struct Outgoing {
    /// Source table of every event.
    pub table: Arc<str>,
    /// The changes, in stream order; may be empty (the position still
    /// advances once every earlier chunk is acknowledged).
    pub events: Vec<ChangeEvent>,
    /// Sum of the events' sizes, for batch sizing.
    pub bytes: u64,
    /// Set on the chunk that ends a snapshot (see [`Chunk::sweep_below`]).
    pub sweep_below: Option<SequenceNumber>,
}

impl Outgoing {
    /// Events of `table`, their size summed.
    pub fn events(table: Arc<str>, events: Vec<ChangeEvent>) -> Self {
        let bytes = events.iter().map(|e| e.size_bytes).sum();
        Self {
            table,
            events,
            bytes,
            sweep_below: None,
        }
    }

    /// True when sinks must see (and acknowledge) the chunk.
    fn needs_sinks(&self) -> bool {
        !self.events.is_empty() || self.sweep_below.is_some()
    }
}

/// Registers `outgoing` as the chunk of `key` ending at `last`, and returns
/// the chunk the sinks must receive (`None` when there is nothing for them:
/// the position is then acknowledged at once).
fn register(
    tracker: &Arc<AckTracker>,
    sink_count: usize,
    key: &ShardKey,
    last: SequenceNumber,
    outgoing: Outgoing,
) -> Result<Option<Arc<Chunk>>, PublishError> {
    let acks = if outgoing.needs_sinks() {
        sink_count
    } else {
        0
    };
    let oldest_ms = outgoing
        .events
        .iter()
        .filter_map(|event| event.approx_time_ms)
        .min();
    let ack = tracker
        .register(key, last, acks, oldest_ms)
        .map_err(|source| PublishError::Register {
            stream: key.stream.to_string(),
            shard: key.shard.to_string(),
            source,
        })?;
    if acks == 0 {
        return Ok(None);
    }
    Ok(Some(Arc::new(Chunk {
        table: outgoing.table,
        events: outgoing.events,
        bytes: outgoing.bytes,
        ack,
        sweep_below: outgoing.sweep_below,
    })))
}

/// Publishes a chunk from async code: registers it, then sends it to every
/// sink in order (waiting while a sink's queue is full).
pub async fn publish(
    tracker: &Arc<AckTracker>,
    sinks: &[(String, mpsc::Sender<Arc<Chunk>>)],
    key: &ShardKey,
    last: SequenceNumber,
    outgoing: Outgoing,
) -> Result<(), PublishError> {
    let Some(chunk) = register(tracker, sinks.len(), key, last, outgoing)? else {
        return Ok(());
    };
    for (name, sender) in sinks {
        if sender.send(Arc::clone(&chunk)).await.is_err() {
            return Err(PublishError::SinkGone { sink: name.clone() });
        }
    }
    Ok(())
}

/// [`publish`] for blocking threads (never call it on an async worker).
pub fn publish_blocking(
    tracker: &Arc<AckTracker>,
    sinks: &[(String, mpsc::Sender<Arc<Chunk>>)],
    key: &ShardKey,
    last: SequenceNumber,
    outgoing: Outgoing,
) -> Result<(), PublishError> {
    let Some(chunk) = register(tracker, sinks.len(), key, last, outgoing)? else {
        return Ok(());
    };
    for (name, sender) in sinks {
        if sender.blocking_send(Arc::clone(&chunk)).is_err() {
            return Err(PublishError::SinkGone { sink: name.clone() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ShardKey {
        ShardKey {
            stream: Arc::from("s"),
            shard: Arc::from("a"),
        }
    }

    fn seq(n: u64) -> SequenceNumber {
        SequenceNumber::parse(&n.to_string()).unwrap()
    }

    #[tokio::test]
    async fn empty_chunks_advance_without_the_sinks() {
        let tracker = AckTracker::new();
        tracker.open_shard(key(), Arc::from("t"), None);
        let (tx, mut rx) = mpsc::channel(4);
        let sinks = [("one".to_owned(), tx)];
        let empty = Outgoing::events(Arc::from("t"), Vec::new());
        publish(&tracker, &sinks, &key(), seq(5), empty)
            .await
            .unwrap();
        assert!(rx.try_recv().is_err());
        assert_eq!(tracker.in_flight(), 0);
        let updates = tracker.take_updates();
        assert_eq!(updates[0].sequence, Some(seq(5)));
    }

    #[tokio::test]
    async fn a_stopped_sink_is_named() {
        let tracker = AckTracker::new();
        tracker.open_shard(key(), Arc::from("t"), None);
        let (tx, rx) = mpsc::channel(4);
        drop(rx);
        let sinks = [("replica".to_owned(), tx)];
        let sweep = Outgoing {
            sweep_below: Some(seq(1)),
            ..Outgoing::events(Arc::from("t"), Vec::new())
        };
        let err = publish(&tracker, &sinks, &key(), seq(1), sweep)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("sink replica stopped"), "{err}");
    }
}
