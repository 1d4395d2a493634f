//! One shard's reader: GetRecords in a loop, decoding, dead letters, chunk
//! registration, fan-out to sinks, idle and throttle backoff, iterator renewal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::api::{ShardStart, StreamsApi};
use crate::backoff::Backoff;
use crate::config::{DecodeErrorPolicy, SnapshotMode, SourceSettings, TableConfig, TrimPolicy};
use crate::coordinator::{AckTracker, Chunk, ShardKey};
use crate::dead_letter::{DeadLetter, DeadLetters};
use crate::decode::{decode_record, DecodeError, RecordsPage};
use crate::model::{ChangeEvent, SequenceNumber};
use crate::source::SourceError;
use crate::stats::Stats;

/// What a reader reports while it runs.
#[derive(Debug, Default)]
pub struct ShardStatus {
    /// The last poll found no new records (the shard is read to its current end).
    pub caught_up: AtomicBool,
}

/// How a reader ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderExit {
    /// The shard is closed and was read to its end; carries the last sequence number read.
    Drained(Option<SequenceNumber>),
    /// Shutdown was requested.
    Cancelled,
}

/// Why a reader stopped the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// A stream API call failed in a way retrying cannot fix.
    #[error("table {table}, shard {shard}: {source}")]
    Source {
        /// Source table.
        table: String,
        /// Shard id.
        shard: String,
        /// The failure.
        source: SourceError,
    },
    /// Records after the checkpoint were trimmed and the policy is `halt`.
    #[error(
        "table {table}, shard {shard}: the stream no longer holds the records after sequence number {after} \
         (older than the stream's 24-hour retention); changes made to the table in that window are lost to this \
         pipeline. Set snapshot = \"when_needed\" on the table to re-snapshot it automatically (or run \
         `dynamo-cdc snapshot --table {table}`), or set on_trimmed = \"skip\" to continue from the oldest \
         available record"
    )]
    Trimmed {
        /// Source table.
        table: String,
        /// Shard id.
        shard: String,
        /// The checkpoint the stream no longer reaches.
        after: String,
    },
    /// A record could not be decoded and the policy is `halt`.
    #[error("table {table}, shard {shard}: {source}")]
    Decode {
        /// Source table.
        table: String,
        /// Shard id.
        shard: String,
        /// The decode error.
        source: Box<DecodeError>,
    },
    /// Sequence numbers went backwards, which versioned sinks rely on never happening.
    #[error("table {table}, shard {shard}: sequence number {got} does not follow {previous}; refusing to continue because sink versions rely on stream order")]
    OutOfOrder {
        /// Source table.
        table: String,
        /// Shard id.
        shard: String,
        /// The previous (or parent's last) sequence number.
        previous: String,
        /// The offending sequence number.
        got: String,
    },
    /// Writing a dead letter or registering a chunk failed.
    #[error("table {table}, shard {shard}: {message}")]
    Internal {
        /// Source table.
        table: String,
        /// Shard id.
        shard: String,
        /// What failed.
        message: String,
    },
    /// A sink stopped accepting chunks (it failed; its own error says why).
    #[error("table {table}: sink {sink} stopped")]
    SinkGone {
        /// Source table.
        table: String,
        /// The sink.
        sink: String,
    },
}

/// Everything one shard reader needs.
pub struct ShardReader {
    /// Stream clients.
    pub api: Arc<StreamsApi>,
    /// The table's configuration.
    pub table: Arc<TableConfig>,
    /// Table name shared by every event.
    pub table_name: Arc<str>,
    /// Stream ARN and shard id.
    pub key: ShardKey,
    /// Where to start.
    pub start: ShardStart,
    /// The largest last sequence number of the parent shards: the first
    /// record read must follow it.
    pub after_parents: Option<SequenceNumber>,
    /// Polling settings.
    pub settings: SourceSettings,
    /// Ordered-ack state.
    pub tracker: Arc<AckTracker>,
    /// One channel per sink, with the sink's name.
    pub sinks: Arc<[(String, mpsc::Sender<Arc<Chunk>>)]>,
    /// Dead-letter destination.
    pub dead_letters: Arc<DeadLetters>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Progress flags read by the caught-up monitor.
    pub status: Arc<ShardStatus>,
    /// Shutdown.
    pub cancel: CancellationToken,
}

impl ShardReader {
    fn fail_source(&self, source: SourceError) -> ReaderError {
        ReaderError::Source {
            table: self.table.name.clone(),
            shard: self.key.shard.to_string(),
            source,
        }
    }

    fn internal(&self, message: String) -> ReaderError {
        ReaderError::Internal {
            table: self.table.name.clone(),
            shard: self.key.shard.to_string(),
            message,
        }
    }

    /// Reads the shard until it is drained, shutdown, or a fatal error.
    pub async fn run(self) -> Result<ReaderExit, ReaderError> {
        let mut start = self.start.clone();
        let mut last_read: Option<SequenceNumber> = match &start {
            ShardStart::After(sequence) => Some(sequence.clone()),
            _ => None,
        };
        let mut iterator: Option<String> = None;
        let mut idle_wait = self.settings.idle_poll_min;
        let mut retry = Backoff::new(
            std::time::Duration::from_millis(50),
            self.settings.max_retry_backoff,
        );
        loop {
            if self.cancel.is_cancelled() {
                return Ok(ReaderExit::Cancelled);
            }
            let current = match iterator.take() {
                Some(it) => it,
                None => match self
                    .api
                    .shard_iterator(&self.key.stream, &self.key.shard, &start)
                    .await
                {
                    Ok(Some(it)) => it,
                    Ok(None) => {
                        self.tracker.mark_drained(&self.key);
                        return Ok(ReaderExit::Drained(last_read));
                    }
                    Err(SourceError::Trimmed { message, .. }) => {
                        start = self.on_trimmed(&start, &message)?;
                        continue;
                    }
                    Err(err) if err.is_retryable() => {
                        self.wait_retry(&mut retry, &err).await;
                        continue;
                    }
                    Err(err) => return Err(self.fail_source(err)),
                },
            };
            self.status.caught_up.store(false, Ordering::Relaxed);
            let page = match self
                .api
                .get_records(&current, self.settings.batch_size)
                .await
            {
                Ok(page) => page,
                Err(SourceError::ExpiredIterator { .. }) => {
                    tracing::info!(table = %self.table.name, shard = %self.key.shard, "shard iterator expired; opening a new one after the last record read");
                    start = match &last_read {
                        Some(sequence) => ShardStart::After(sequence.clone()),
                        None => start,
                    };
                    continue;
                }
                Err(SourceError::Trimmed { message, .. }) => {
                    start = self.on_trimmed(&start, &message)?;
                    continue;
                }
                Err(err) if err.is_retryable() => {
                    iterator = Some(current);
                    self.wait_retry(&mut retry, &err).await;
                    continue;
                }
                Err(err) => return Err(self.fail_source(err)),
            };
            retry.reset();
            self.stats.record_page(page.len());
            let had_records = !page.is_empty();
            if had_records {
                let last = self.deliver(&page, last_read.as_ref()).await?;
                if let Some(last) = last {
                    start = ShardStart::After(last.clone());
                    last_read = Some(last);
                }
            }
            match page.next_shard_iterator {
                None => {
                    self.tracker.mark_drained(&self.key);
                    return Ok(ReaderExit::Drained(last_read));
                }
                Some(next) => iterator = Some(next),
            }
            self.status.caught_up.store(!had_records, Ordering::Relaxed);
            if had_records {
                idle_wait = self.settings.idle_poll_min;
            } else {
                tokio::select! {
                    () = tokio::time::sleep(idle_wait) => {}
                    () = self.cancel.cancelled() => return Ok(ReaderExit::Cancelled),
                }
                idle_wait = (idle_wait * 2).min(self.settings.idle_poll_max);
            }
        }
    }

    async fn wait_retry(&self, retry: &mut Backoff, err: &SourceError) {
        let delay = retry.next_delay();
        tracing::warn!(
            table = %self.table.name,
            shard = %self.key.shard,
            attempt = retry.attempts(),
            retry_in_ms = delay.as_millis() as u64,
            "{err}; retrying"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.cancel.cancelled() => {}
        }
    }

    /// Applies the trim policy: an error for `halt`, TRIM_HORIZON for `skip`.
    fn on_trimmed(&self, start: &ShardStart, message: &str) -> Result<ShardStart, ReaderError> {
        let after = match start {
            ShardStart::After(sequence) => sequence.to_string(),
            ShardStart::At(sequence) => format!("{sequence} (inclusive)"),
            ShardStart::TrimHorizon | ShardStart::Latest => "the trim horizon".to_owned(),
        };
        // With snapshot = "when_needed" the table runner re-snapshots instead.
        let resnapshot = self.table.snapshot == SnapshotMode::WhenNeeded;
        match self.table.on_trimmed {
            _ if resnapshot => Err(ReaderError::Trimmed {
                table: self.table.name.clone(),
                shard: self.key.shard.to_string(),
                after,
            }),
            TrimPolicy::Halt => Err(ReaderError::Trimmed {
                table: self.table.name.clone(),
                shard: self.key.shard.to_string(),
                after,
            }),
            TrimPolicy::Skip => {
                tracing::error!(
                    table = %self.table.name,
                    shard = %self.key.shard,
                    "records after sequence number {after} were trimmed from the stream ({message}); \
                     continuing at the oldest available record: the changes in between are missing from the sinks"
                );
                Ok(ShardStart::TrimHorizon)
            }
        }
    }

    /// Decodes a page, dead-letters what fails, registers the chunk and sends
    /// it to every sink. Returns the last sequence number of the page.
    async fn deliver(
        &self,
        page: &RecordsPage,
        previous: Option<&SequenceNumber>,
    ) -> Result<Option<SequenceNumber>, ReaderError> {
        let mut events: Vec<ChangeEvent> = Vec::with_capacity(page.len());
        let mut failures: Vec<(usize, DecodeError)> = Vec::new();
        let mut last: Option<SequenceNumber> = None;
        let mut bytes = 0u64;
        let floor = previous.or(self.after_parents.as_ref()).cloned();
        for (index, raw) in page.records().enumerate() {
            match decode_record(raw, &self.table_name, &self.key.shard) {
                Ok(event) => {
                    let sequence = event.version();
                    let bound = last.as_ref().or(floor.as_ref());
                    if let Some(bound) = bound {
                        if sequence <= bound {
                            return Err(ReaderError::OutOfOrder {
                                table: self.table.name.clone(),
                                shard: self.key.shard.to_string(),
                                previous: bound.to_string(),
                                got: sequence.to_string(),
                            });
                        }
                    }
                    last = Some(sequence.clone());
                    bytes += event.size_bytes;
                    events.push(event);
                }
                Err(err) => {
                    if self.table.on_decode_error == DecodeErrorPolicy::Halt {
                        return Err(ReaderError::Decode {
                            table: self.table.name.clone(),
                            shard: self.key.shard.to_string(),
                            source: Box::new(err),
                        });
                    }
                    if let DecodeError::Record { sequence, .. } = &err {
                        if let Ok(sequence) = SequenceNumber::parse(sequence) {
                            if last.as_ref().is_none_or(|l| &sequence > l) {
                                last = Some(sequence);
                            }
                        }
                    }
                    failures.push((index, err));
                }
            }
        }
        if !failures.is_empty() {
            self.dead_letter(page, &failures)?;
        }
        let Some(last) = last else {
            // Nothing on the page had a readable sequence number: the records are
            // dead-lettered, and the checkpoint stays where it was.
            return Ok(None);
        };
        let acks = if events.is_empty() {
            0
        } else {
            self.sinks.len()
        };
        let ack = self
            .tracker
            .register(&self.key, last.clone(), acks)
            .map_err(|err| self.internal(format!("registering a chunk: {err}")))?;
        if !events.is_empty() {
            let chunk = Arc::new(Chunk {
                table: Arc::clone(&self.table_name),
                events,
                bytes,
                ack,
                sweep_below: None,
            });
            for (name, sender) in self.sinks.iter() {
                if sender.send(Arc::clone(&chunk)).await.is_err() {
                    return Err(ReaderError::SinkGone {
                        table: self.table.name.clone(),
                        sink: name.clone(),
                    });
                }
            }
        }
        Ok(Some(last))
    }

    fn dead_letter(
        &self,
        page: &RecordsPage,
        failures: &[(usize, DecodeError)],
    ) -> Result<(), ReaderError> {
        self.stats.record_decode_errors(failures.len());
        let messages: Vec<(String, Option<String>)> = failures
            .iter()
            .map(|(_, err)| {
                let sequence = match err {
                    DecodeError::Record { sequence, .. } if sequence != "?" => {
                        Some(sequence.clone())
                    }
                    _ => None,
                };
                (err.to_string(), sequence)
            })
            .collect();
        // Every record of a parsed page is well-formed JSON.
        let raws: Vec<&serde_json::value::RawValue> = failures
            .iter()
            .filter_map(|(index, _)| serde_json::from_str(page.record(*index)?).ok())
            .collect();
        let letters: Vec<DeadLetter<'_>> = failures
            .iter()
            .zip(&messages)
            .zip(&raws)
            .map(|(((_, _), (message, sequence)), raw)| DeadLetter {
                table: &self.table.name,
                stage: "decode",
                shard: &self.key.shard,
                sequence: sequence.as_deref(),
                error: message,
                record: raw,
            })
            .collect();
        self.dead_letters
            .write(&letters)
            .map_err(|err| self.internal(err.to_string()))?;
        for (message, _) in &messages {
            tracing::error!(
                table = %self.table.name,
                shard = %self.key.shard,
                path = %self.dead_letters.path_for(&self.table.name).display(),
                "record could not be decoded, written to the dead-letter file: {message}"
            );
        }
        Ok(())
    }
}
