//! Publishing a chunk: the transform stage (each table's filters and
//! transforms, the sinks' routes and their own stages), then registering it
//! with the ack tracker, then handing it to every sink that takes it. Every
//! path that produces changes (stream readers, snapshots, replay, the
//! loader) goes through here, so "a position is checkpointed only once
//! every sink acknowledged it" and "every path transforms alike" are
//! written once.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::chunk::Chunk;
use super::frontier::FrontierError;
use super::tracker::{AckHandle, AckTracker, ShardKey};
use crate::dead_letter::DeadLetterError;
use crate::model::{ChangeEvent, SequenceNumber};
use crate::transform::Routes;

/// The sinks' channels, each with the sink's name, and the transform stage
/// in front of them (`routes` lists the sinks in the same order).
#[derive(Debug)]
pub struct Fanout {
    sinks: Vec<(String, mpsc::Sender<Arc<Chunk>>)>,
    routes: Routes,
}

impl Fanout {
    /// A fan-out to `sinks` through `routes` (whose sink routes are in the
    /// order of `sinks`).
    pub fn new(sinks: Vec<(String, mpsc::Sender<Arc<Chunk>>)>, routes: Routes) -> Self {
        Self { sinks, routes }
    }

    /// A fan-out with no transform stage: every sink takes every change.
    pub fn direct(sinks: Vec<(String, mpsc::Sender<Arc<Chunk>>)>) -> Self {
        Self::new(sinks, Routes::default())
    }

    /// The transform stage.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }
}

/// The channels into the sinks, shared by every reader.
pub type SinkSenders = Arc<Fanout>;

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
    /// A change a transform failed on could not be dead-lettered.
    #[error("dead-lettering a change a transform failed on: {0}")]
    DeadLetter(#[from] DeadLetterError),
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

/// A chunk for one sink: the sink's index and what it receives.
type Delivery = (usize, Arc<Chunk>);

/// Runs the transform stage over `outgoing`, registers what is left as the
/// chunk of `key` ending at `last`, and returns what each sink receives
/// (nothing when no sink needs to see it: the position is then
/// acknowledged at once).
fn prepare(
    tracker: &Arc<AckTracker>,
    fanout: &Fanout,
    key: &ShardKey,
    last: SequenceNumber,
    mut outgoing: Outgoing,
) -> Result<Vec<Delivery>, PublishError> {
    let routes = &fanout.routes;
    let before = outgoing.events.len();
    outgoing.events = routes.table_events(&outgoing.table, outgoing.events)?;
    if outgoing.events.len() != before {
        outgoing.bytes = outgoing.events.iter().map(|e| e.size_bytes).sum();
    }
    let takers: Vec<usize> = match outgoing.needs_sinks() {
        true => (0..fanout.sinks.len())
            .filter(|&index| routes.takes(index, &outgoing.table))
            .collect(),
        false => Vec::new(),
    };
    let oldest_ms = outgoing
        .events
        .iter()
        .filter_map(|event| event.approx_time_ms)
        .min();
    let ack = tracker
        .register(key, last, takers.len(), oldest_ms)
        .map_err(|source| PublishError::Register {
            stream: key.stream.to_string(),
            shard: key.shard.to_string(),
            source,
        })?;
    let mut own_events = Vec::with_capacity(takers.len());
    for index in takers {
        own_events.push((
            index,
            routes.sink_events(index, &outgoing.table, &outgoing.events)?,
        ));
    }
    let shared = own_events.iter().any(|(_, own)| own.is_none()).then(|| {
        let events = std::mem::take(&mut outgoing.events);
        Arc::new(chunk_of(&outgoing, events, outgoing.bytes, &ack))
    });
    let mut deliveries = Vec::with_capacity(own_events.len());
    for (index, own) in own_events {
        let chunk = match (own, &shared) {
            (None, Some(shared)) => Arc::clone(shared),
            (None, None) => continue, // `shared` exists whenever a sink takes the chunk as is.
            (Some(events), _) if events.is_empty() && outgoing.sweep_below.is_none() => {
                // Nothing of it is left for this sink: acknowledged for it now.
                ack.ack().map_err(|source| PublishError::Register {
                    stream: key.stream.to_string(),
                    shard: key.shard.to_string(),
                    source,
                })?;
                continue;
            }
            (Some(events), _) => {
                let bytes = events.iter().map(|e| e.size_bytes).sum();
                Arc::new(chunk_of(&outgoing, events, bytes, &ack))
            }
        };
        deliveries.push((index, chunk));
    }
    Ok(deliveries)
}

fn chunk_of(outgoing: &Outgoing, events: Vec<ChangeEvent>, bytes: u64, ack: &AckHandle) -> Chunk {
    Chunk {
        table: Arc::clone(&outgoing.table),
        events,
        bytes,
        ack: ack.clone(),
        sweep_below: outgoing.sweep_below.clone(),
    }
}

/// Publishes a chunk from async code: transforms it, registers it, then
/// sends it to every sink that takes it, in order (waiting while a sink's
/// queue is full).
pub async fn publish(
    tracker: &Arc<AckTracker>,
    fanout: &Fanout,
    key: &ShardKey,
    last: SequenceNumber,
    outgoing: Outgoing,
) -> Result<(), PublishError> {
    for (index, chunk) in prepare(tracker, fanout, key, last, outgoing)? {
        let (name, sender) = &fanout.sinks[index];
        if sender.send(chunk).await.is_err() {
            return Err(PublishError::SinkGone { sink: name.clone() });
        }
    }
    Ok(())
}

/// [`publish`] for blocking threads (never call it on an async worker).
pub fn publish_blocking(
    tracker: &Arc<AckTracker>,
    fanout: &Fanout,
    key: &ShardKey,
    last: SequenceNumber,
    outgoing: Outgoing,
) -> Result<(), PublishError> {
    for (index, chunk) in prepare(tracker, fanout, key, last, outgoing)? {
        let (name, sender) = &fanout.sinks[index];
        if sender.blocking_send(chunk).is_err() {
            return Err(PublishError::SinkGone { sink: name.clone() });
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "publish_tests.rs"]
mod tests;
