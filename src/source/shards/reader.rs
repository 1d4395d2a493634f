//! One shard's reader, for any [`ShardSource`]: GetRecords in a loop, idle
//! and throttle backoff, iterator renewal, trim policy; each page goes
//! through [`super::deliver`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::{SnapshotMode, SourceSettings, TableConfig, TrimPolicy};
use crate::coordinator::{AckTracker, ShardKey, SinkSenders};
use crate::dead_letter::DeadLetters;
use crate::decode::DecodeError;
use crate::metric_names as names;
use crate::model::SequenceNumber;
use crate::source::shard::{ShardSource, ShardStart, SourcePage};
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
         (older than the stream's retention); changes made to the table in that window are lost to this \
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
    /// Positions went backwards within a shard, or (DynamoDB Streams) a
    /// child's first record does not follow its parents' last, which
    /// versioned sinks rely on never happening.
    #[error("table {table}, shard {shard}: sequence number {got} does not follow {previous}; refusing to continue because checkpoints and sink versions rely on stream order")]
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
pub struct ShardReader<S: ShardSource> {
    /// The stream API.
    pub source: Arc<S>,
    /// The lead table's configuration (policies shared by every table the
    /// stream carries).
    pub table: Arc<TableConfig>,
    /// Stream and shard id.
    pub key: ShardKey,
    /// Where to start.
    pub start: ShardStart,
    /// The largest last position of the parent shards: with
    /// [`ShardSource::versions_follow_positions`], the first record read
    /// must follow it.
    pub after_parents: Option<SequenceNumber>,
    /// Polling settings.
    pub settings: SourceSettings,
    /// Ordered-ack state.
    pub tracker: Arc<AckTracker>,
    /// One channel per sink, with the sink's name.
    pub sinks: SinkSenders,
    /// Dead-letter destination.
    pub dead_letters: Arc<DeadLetters>,
    /// Records of tables not followed are dead-lettered (else counted and skipped).
    pub dead_letter_other_tables: bool,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Progress flags read by the caught-up monitor.
    pub status: Arc<ShardStatus>,
    /// Stops this reader: shutdown, or (later) a lost lease.
    pub cancel: CancellationToken,
}

impl<S: ShardSource> ShardReader<S> {
    pub(super) fn fail_source(&self, source: SourceError) -> ReaderError {
        ReaderError::Source {
            table: self.table.name.clone(),
            shard: self.key.shard.to_string(),
            source,
        }
    }

    pub(super) fn internal(&self, message: String) -> ReaderError {
        ReaderError::Internal {
            table: self.table.name.clone(),
            shard: self.key.shard.to_string(),
            message,
        }
    }

    /// Reads the shard until it is drained, shutdown, or a fatal error.
    pub async fn run(self) -> Result<ReaderExit, ReaderError> {
        let exit = self.read().await;
        // Not read here any more: the shard's lag is no longer this reader's.
        self.stats.probes.lag.forget(&self.key);
        exit
    }

    async fn read(&self) -> Result<ReaderExit, ReaderError> {
        let table_name: Arc<str> = Arc::from(self.table.name.as_str());
        let labels = [
            ("table", self.table.name.clone()),
            ("shard", self.key.shard.to_string()),
        ];
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
        let mut last_call = tokio::time::Instant::now() - self.source.min_poll_interval();
        loop {
            if self.cancel.is_cancelled() {
                return Ok(ReaderExit::Cancelled);
            }
            let current = match iterator.take() {
                Some(it) => it,
                None => match self.source.shard_iterator(&self.key.shard, &start).await {
                    Ok(Some(it)) => it,
                    Ok(None) => return Ok(self.drained(last_read)),
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
            tokio::time::sleep_until(last_call + self.source.min_poll_interval()).await;
            last_call = tokio::time::Instant::now();
            metrics::counter!(names::GET_RECORDS_CALLS, "table" => self.table.name.clone())
                .increment(1);
            let page = match self
                .source
                .get_records(&current, self.settings.batch_size)
                .await
            {
                Ok(page) => page,
                Err(SourceError::ExpiredIterator { .. }) => {
                    tracing::info!(table = %self.table.name, shard = %self.key.shard, "shard iterator expired; opening a new one after the last record read");
                    self.stats.record_iterator_renewal();
                    metrics::counter!(names::ITERATOR_RENEWALS, "table" => self.table.name.clone())
                        .increment(1);
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
            metrics::counter!(names::RECORDS_READ, &labels).increment(page.len() as u64);
            if let Some(millis) = page.millis_behind() {
                self.stats.record_millis_behind(&self.lag_label(), millis);
            }
            let had_records = !page.is_empty();
            let mut newest_ms = None;
            if had_records {
                let (last, newest) = self.deliver(&page, last_read.as_ref()).await?;
                newest_ms = newest;
                if let Some(last) = last {
                    start = ShardStart::After(last.clone());
                    last_read = Some(last);
                }
            }
            let lag = &self.stats.probes.lag;
            lag.page(
                &table_name,
                &self.key,
                newest_ms,
                !had_records,
                page.millis_behind(),
            );
            match page.next_iterator() {
                None => {
                    for child in page.child_shards() {
                        tracing::info!(table = %self.table.name, shard = %self.key.shard,
                            child = %child.id, parents = ?child.parents, "shard closed; child announced");
                    }
                    return Ok(self.drained(last_read));
                }
                Some(next) => iterator = Some(next.to_owned()),
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

    fn lag_label(&self) -> String {
        format!("{}/{}", self.key.stream, self.key.shard)
    }

    fn drained(&self, last_read: Option<SequenceNumber>) -> ReaderExit {
        self.stats.forget_millis_behind(&self.lag_label());
        self.tracker.mark_drained(&self.key);
        ReaderExit::Drained(last_read)
    }

    async fn wait_retry(&self, retry: &mut Backoff, err: &SourceError) {
        if err.is_throttling() {
            metrics::counter!(names::THROTTLES, "table" => self.table.name.clone()).increment(1);
        }
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

    /// Applies the trim policy: an error for `halt` (and for
    /// `snapshot = "when_needed"`, whose table runner re-snapshots),
    /// TRIM_HORIZON for `skip`.
    fn on_trimmed(&self, start: &ShardStart, message: &str) -> Result<ShardStart, ReaderError> {
        let after = match start {
            ShardStart::After(sequence) => sequence.to_string(),
            ShardStart::At(sequence) => format!("{sequence} (inclusive)"),
            ShardStart::AtTimestamp(ms) => format!("the time {ms} ms"),
            ShardStart::TrimHorizon | ShardStart::Latest => "the trim horizon".to_owned(),
        };
        let resnapshot = self.table.snapshot == SnapshotMode::WhenNeeded;
        if resnapshot || self.table.on_trimmed == TrimPolicy::Halt {
            return Err(ReaderError::Trimmed {
                table: self.table.name.clone(),
                shard: self.key.shard.to_string(),
                after,
            });
        }
        tracing::error!(
            table = %self.table.name,
            shard = %self.key.shard,
            "records after sequence number {after} were trimmed from the stream ({message}); \
             continuing at the oldest available record: the changes in between are missing from the sinks"
        );
        Ok(ShardStart::TrimHorizon)
    }
}
