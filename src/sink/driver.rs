//! The shared sink driver: batching by records, bytes and age; retries with
//! jittered backoff; dead letters; acknowledgements after durable writes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::BatchConfig;
use super::{Batch, Rejected, SinkError, SinkWriter};
use crate::backoff::Backoff;
use crate::coordinator::Chunk;
use crate::dead_letter::{DeadLetter, DeadLetters};
use crate::metric_names as names;
use crate::stats::Stats;

/// What a sink task needs besides its writer.
pub struct SinkContext {
    /// Sink name, for logs and dead letters.
    pub name: String,
    /// Batching and retry settings.
    pub batch: BatchConfig,
    /// Where rejected records go.
    pub dead_letters: Arc<DeadLetters>,
    /// Cancelled on shutdown: retries stop; unacknowledged chunks stay unacknowledged.
    pub cancel: CancellationToken,
    /// Counters.
    pub stats: Arc<Stats>,
}

/// Runs a sink until its input closes (every reader finished) or a fatal
/// error. Each chunk is acknowledged only after the write holding it
/// succeeded and its rejected records are in the dead-letter file.
pub async fn run_sink<W: SinkWriter>(
    mut writer: W,
    mut input: mpsc::Receiver<Arc<Chunk>>,
    ctx: SinkContext,
) -> Result<(), SinkError> {
    let mut pending: Option<Arc<Chunk>> = None;
    loop {
        let first = match pending.take() {
            Some(chunk) => chunk,
            None => match input.recv().await {
                Some(chunk) => chunk,
                None => return Ok(()),
            },
        };
        let deadline = Instant::now() + ctx.batch.max_age;
        let mut records = first.events.len();
        let mut bytes = first.bytes;
        let mut batch = Batch {
            chunks: vec![first],
        };
        let mut closed = false;
        while records < ctx.batch.max_records && bytes < ctx.batch.max_bytes {
            match tokio::time::timeout_at(deadline, input.recv()).await {
                Ok(Some(chunk)) => {
                    records += chunk.events.len();
                    bytes += chunk.bytes;
                    batch.chunks.push(chunk);
                }
                Ok(None) => {
                    closed = true;
                    break;
                }
                Err(_elapsed) => break,
            }
        }
        if !write_with_retries(&mut writer, batch, &ctx).await? {
            return Ok(());
        }
        if closed {
            return Ok(());
        }
        if let Ok(chunk) = input.try_recv() {
            pending = Some(chunk);
        }
    }
}

/// Writes one batch until it succeeds; returns false when shutdown stopped the retries.
async fn write_with_retries<W: SinkWriter>(
    writer: &mut W,
    batch: Batch,
    ctx: &SinkContext,
) -> Result<bool, SinkError> {
    let mut backoff = Backoff::new(Duration::from_millis(100), ctx.batch.max_retry_backoff);
    let started = Instant::now();
    loop {
        match watched_write(writer, &batch, ctx).await {
            Ok(rejected) => {
                dead_letter(&batch, &rejected, ctx)?;
                for chunk in &batch.chunks {
                    chunk.ack.ack().map_err(|err| SinkError::Fatal {
                        sink: ctx.name.clone(),
                        message: format!("acknowledgement failed: {err}"),
                    })?;
                }
                ctx.stats.record_sink_write(
                    &ctx.name,
                    batch.len() - rejected.len(),
                    rejected.len(),
                    started.elapsed(),
                );
                return Ok(true);
            }
            Err(SinkError::Transient { message, .. }) => {
                metrics::counter!(names::SINK_RETRIES, "sink" => ctx.name.clone()).increment(1);
                let health = &ctx.stats.probes.health;
                health.sink_failed(&ctx.name, ctx.batch.unready_after, &message);
                let delay = backoff.next_delay();
                tracing::warn!(
                    sink = %ctx.name,
                    attempt = backoff.attempts(),
                    retry_in_ms = delay.as_millis() as u64,
                    "write failed, will retry: {message}"
                );
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = ctx.cancel.cancelled() => {
                        tracing::warn!(sink = %ctx.name, "shutting down with an unwritten batch; it will be read again on restart");
                        return Ok(false);
                    }
                }
            }
            Err(fatal) => return Err(fatal),
        }
    }
}

/// How long one write may wait for its server before the sink counts as
/// failing: a server that accepts connections but never answers (or a
/// client that queues and retries by itself, as Kafka's does) fails no
/// write, yet the sink is as stuck as one whose writes fail.
const STALLED_AFTER: Duration = Duration::from_secs(5);

/// [`write_and_sweep`], reporting the sink as failing to the health probe
/// while the write has waited longer than [`STALLED_AFTER`].
async fn watched_write<W: SinkWriter>(
    writer: &mut W,
    batch: &Batch,
    ctx: &SinkContext,
) -> Result<Vec<Rejected>, SinkError> {
    let started = Instant::now();
    let write = write_and_sweep(writer, batch);
    tokio::pin!(write);
    let mut watch = tokio::time::interval_at(started + STALLED_AFTER, Duration::from_secs(1));
    loop {
        tokio::select! {
            result = &mut write => return result,
            _ = watch.tick() => {
                let waited = started.elapsed().as_secs();
                ctx.stats.probes.health.sink_failed(
                    &ctx.name,
                    ctx.batch.unready_after,
                    &format!("a write has waited {waited}s for the server"),
                );
            }
        }
    }
}

/// Writes the batch, then ends the snapshots whose last chunk it holds.
async fn write_and_sweep<W: SinkWriter>(
    writer: &mut W,
    batch: &Batch,
) -> Result<Vec<Rejected>, SinkError> {
    let rejected = writer.write(batch.clone()).await?;
    for chunk in &batch.chunks {
        if let Some(below) = &chunk.sweep_below {
            writer.sweep(&chunk.table, below).await?;
        }
    }
    Ok(rejected)
}

fn dead_letter(batch: &Batch, rejected: &[Rejected], ctx: &SinkContext) -> Result<(), SinkError> {
    for reject in rejected {
        let Some(event) = batch
            .chunks
            .get(reject.chunk)
            .and_then(|chunk| chunk.events.get(reject.event))
        else {
            return Err(SinkError::Fatal {
                sink: ctx.name.clone(),
                message: format!("rejected a record outside its batch: {reject:?}"),
            });
        };
        let record = serde_json::value::to_raw_value(event).map_err(|err| SinkError::Fatal {
            sink: ctx.name.clone(),
            message: format!("cannot serialize a rejected record: {err}"),
        })?;
        let stage = format!("sink:{}", ctx.name);
        let letter = DeadLetter {
            table: &event.table,
            stage: &stage,
            shard: &event.position.shard,
            sequence: Some(event.position.sequence.as_str()),
            error: &reject.reason,
            record: &record,
        };
        ctx.dead_letters
            .write(&[letter])
            .map_err(|err| SinkError::Fatal {
                sink: ctx.name.clone(),
                message: err.to_string(),
            })?;
        tracing::error!(
            sink = %ctx.name,
            table = %event.table,
            sequence = %event.position.sequence,
            path = %ctx.dead_letters.path_for(&event.table).display(),
            "record rejected, written to the dead-letter file: {}",
            reject.reason
        );
    }
    Ok(())
}
