//! Sinks: one folder per destination over one shared driver that batches,
//! retries with backoff, dead-letters rejected records and acknowledges chunks.
//! Each folder owns its settings; `registry` is the one list of sinks.

pub mod batch;
/// Always built: its column types also name the s3 sink's typed columns
/// and the schema report's proposals; the sink itself needs the feature.
pub mod clickhouse;
pub mod columns;
pub mod driver;
#[cfg(feature = "elasticsearch")]
pub mod elasticsearch;
#[cfg(feature = "jsonl")]
pub mod jsonl;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod refused;
pub mod registry;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::future::Future;
use std::sync::Arc;

use crate::coordinator::Chunk;
use crate::model::{ChangeEvent, SequenceNumber};

pub use batch::BatchConfig;
pub use driver::{run_sink, SinkContext};
pub use registry::{InvalidField, NotBuilt, SinkConfig, SinkEnv, SinkSpec};

/// A write failure of a whole batch.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying: the destination may accept the same batch later
    /// (connection lost, busy, disk full).
    #[error("{sink}: {message}")]
    Transient {
        /// Sink name.
        sink: String,
        /// What went wrong.
        message: String,
    },
    /// Retrying cannot help (schema conflict, misconfiguration): the pipeline stops.
    #[error("{sink}: {message}")]
    Fatal {
        /// Sink name.
        sink: String,
        /// What went wrong.
        message: String,
    },
}

impl SinkError {
    /// The fatal error of sink `sink` saying `message`.
    pub fn fatal(sink: &str, message: impl Into<String>) -> Self {
        Self::Fatal {
            sink: sink.to_owned(),
            message: message.into(),
        }
    }

    /// A maker of sink `sink`'s fatal errors, for `map_err` chains.
    pub fn fatal_of(sink: &str) -> impl Fn(String) -> Self + Copy + '_ {
        move |message| Self::fatal(sink, message)
    }
}

/// A record the sink refused for good; it goes to the dead-letter file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Index of the chunk within the batch.
    pub chunk: usize,
    /// Index of the event within the chunk.
    pub event: usize,
    /// Why it was refused.
    pub reason: String,
}

/// Whole chunks handed to a sink in one write, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The chunks.
    pub chunks: Vec<Arc<Chunk>>,
}

impl Batch {
    /// Every event of the batch with its (chunk, event) indices, in order.
    pub fn events(&self) -> impl Iterator<Item = ((usize, usize), &ChangeEvent)> {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk
                .events
                .iter()
                .enumerate()
                .map(move |(e, event)| ((c, e), event))
        })
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.events.len()).sum()
    }

    /// True when the batch holds no events.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A destination. `write` must return only once every event it did not
/// reject is durable; a returned error means nothing of the batch may be
/// assumed written (writing it again must be harmless).
pub trait SinkWriter: Send + 'static {
    /// Writes a batch; returns the events refused for good.
    fn write(
        &mut self,
        batch: Batch,
    ) -> impl Future<Output = Result<Vec<Rejected>, SinkError>> + Send;

    /// Ends a snapshot of `table` (after the batch holding its end was
    /// written): a sink that keeps state marks the rows whose version is
    /// below `below` deleted, since the snapshot did not rewrite them (the
    /// items are gone). Must be idempotent: it runs again after a crash.
    /// A no-op by default, for sinks that keep no state.
    fn sweep(
        &mut self,
        table: &str,
        below: &SequenceNumber,
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        let _ = (table, below);
        std::future::ready(Ok(()))
    }
}

#[cfg(test)]
mod driver_tests;

/// Runs a blocking write on `state` on the blocking thread pool, so that
/// file and SQLite I/O never stalls the async workers.
#[cfg(any(feature = "sqlite", feature = "jsonl"))]
pub(crate) async fn write_blocking<S: Send + 'static>(
    sink: &str,
    state: &Arc<std::sync::Mutex<S>>,
    batch: Batch,
    write: fn(&mut S, &Batch) -> Result<Vec<Rejected>, SinkError>,
) -> Result<Vec<Rejected>, SinkError> {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let mut state = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        write(&mut state, &batch)
    })
    .await
    .unwrap_or_else(|err| {
        Err(SinkError::Fatal {
            sink: sink.to_owned(),
            message: format!("writer thread failed: {err}"),
        })
    })
}
