//! One shard's reader, for any [`ShardSource`]: GetRecords in a loop, idle
//! and throttle backoff, iterator renewal, trim policy; each page goes
//! through [`super::deliver`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::{SnapshotMode, SourceSettings, TableConfig, TrimPolicy};
use crate::coordinator::{AckTracker, PublishError, ShardKey, SinkSenders};
use crate::dead_letter::{DeadLetterError, DeadLetters};
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
    /// A chunk could not be registered with the tracker.
    #[error("table {table}, shard {shard}: {source}")]
    Publish {
        /// Source table.
        table: String,
        /// Shard id.
        shard: String,
        /// The tracker's refusal.
        #[source]
        source: Box<PublishError>,
    },
    /// A record that cannot be decoded could not be written to its
    /// dead-letter file (the reader stops rather than lose it).
    #[error("table {table}, shard {shard}: {source}")]
    DeadLetter {
        /// Source table.
        table: String,
        /// Shard id.
        shard: String,
        /// The dead-letter file's error.
        #[source]
        source: Box<DeadLetterError>,
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

/// Where a reader stands in its shard between pages.
struct Cursor {
    /// Where a new iterator opens.
    start: ShardStart,
    /// The last record delivered (or the checkpoint's).
    last_read: Option<SequenceNumber>,
    /// The iterator for the next page, while one is open.
    iterator: Option<String>,
    /// The wait after the next empty page.
    idle_wait: std::time::Duration,
    /// Backoff of failed calls, reset by a page.
    retry: Backoff,
    /// When GetRecords was last called.
    last_call: tokio::time::Instant,
}

/// How one step of the read loop went.
enum Step<T> {
    /// Go on with this.
    Go(T),
    /// Start the loop over (after a retry wait or a new start position).
    Again,
    /// The reader is done.
    Exit(ReaderExit),
}

impl<S: ShardSource> ShardReader<S> {
    pub(super) fn fail_source(&self, source: SourceError) -> ReaderError {
        ReaderError::Source {
            table: self.table.name.clone(),
            shard: self.key.shard.to_string(),
            source,
        }
    }

    pub(super) fn publish_failed(&self, source: PublishError) -> ReaderError {
        ReaderError::Publish {
            table: self.table.name.clone(),
            shard: self.key.shard.to_string(),
            source: Box::new(source),
        }
    }

    pub(super) fn dead_letter_failed(&self, source: DeadLetterError) -> ReaderError {
        ReaderError::DeadLetter {
            table: self.table.name.clone(),
            shard: self.key.shard.to_string(),
            source: Box::new(source),
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
        let mut cursor = self.cursor();
        loop {
            if self.cancel.is_cancelled() {
                return Ok(ReaderExit::Cancelled);
            }
            let current = match self.open_iterator(&mut cursor).await? {
                Step::Go(iterator) => iterator,
                Step::Again => continue,
                Step::Exit(exit) => return Ok(exit),
            };
            self.status.caught_up.store(false, Ordering::Relaxed);
            let page = match self.fetch_page(&mut cursor, current).await? {
                Step::Go(page) => page,
                Step::Again => continue,
                Step::Exit(exit) => return Ok(exit),
            };
            let had_records = self.take_page(&mut cursor, &page).await?;
            let Some(next) = page.next_iterator() else {
                self.log_children(&page);
                return Ok(self.drained(cursor.last_read));
            };
            cursor.iterator = Some(next.to_owned());
            self.status.caught_up.store(!had_records, Ordering::Relaxed);
            if !self.pause_when_idle(&mut cursor, had_records).await {
                return Ok(ReaderExit::Cancelled);
            }
        }
    }

    /// The reader's position before its first page.
    fn cursor(&self) -> Cursor {
        Cursor {
            start: self.start.clone(),
            last_read: match &self.start {
                ShardStart::After(sequence) => Some(sequence.clone()),
                _ => None,
            },
            iterator: None,
            idle_wait: self.settings.idle_poll_min,
            retry: Backoff::new(
                std::time::Duration::from_millis(50),
                self.settings.max_retry_backoff,
            ),
            last_call: tokio::time::Instant::now() - self.source.min_poll_interval(),
        }
    }

    /// The iterator for the next page: the open one, else a new one at the
    /// cursor's start. A shard with no iterator left is drained; a trimmed
    /// start follows the trim policy; retryable failures wait and try again.
    async fn open_iterator(&self, cursor: &mut Cursor) -> Result<Step<String>, ReaderError> {
        if let Some(iterator) = cursor.iterator.take() {
            return Ok(Step::Go(iterator));
        }
        match self
            .source
            .shard_iterator(&self.key.shard, &cursor.start)
            .await
        {
            Ok(Some(iterator)) => Ok(Step::Go(iterator)),
            Ok(None) => Ok(Step::Exit(self.drained(cursor.last_read.take()))),
            Err(SourceError::Trimmed { message, .. }) => {
                cursor.start = self.on_trimmed(&cursor.start, &message)?;
                Ok(Step::Again)
            }
            Err(err) if err.is_retryable() => {
                self.wait_retry(&mut cursor.retry, &err).await;
                Ok(Step::Again)
            }
            Err(err) => Err(self.fail_source(err)),
        }
    }

    /// One GetRecords call, no sooner than the source's minimum interval
    /// after the last. An expired iterator reopens after the last record
    /// read; a trimmed one follows the trim policy; a retryable failure
    /// keeps the iterator and waits.
    async fn fetch_page(
        &self,
        cursor: &mut Cursor,
        current: String,
    ) -> Result<Step<S::Page>, ReaderError> {
        tokio::time::sleep_until(cursor.last_call + self.source.min_poll_interval()).await;
        cursor.last_call = tokio::time::Instant::now();
        metrics::counter!(names::GET_RECORDS_CALLS, "table" => self.table.name.clone())
            .increment(1);
        match self
            .source
            .get_records(&current, self.settings.batch_size)
            .await
        {
            Ok(page) => Ok(Step::Go(page)),
            Err(SourceError::ExpiredIterator { .. }) => {
                tracing::info!(table = %self.table.name, shard = %self.key.shard, "shard iterator expired; opening a new one after the last record read");
                self.stats.record_iterator_renewal();
                metrics::counter!(names::ITERATOR_RENEWALS, "table" => self.table.name.clone())
                    .increment(1);
                if let Some(sequence) = &cursor.last_read {
                    cursor.start = ShardStart::After(sequence.clone());
                }
                Ok(Step::Again)
            }
            Err(SourceError::Trimmed { message, .. }) => {
                cursor.start = self.on_trimmed(&cursor.start, &message)?;
                Ok(Step::Again)
            }
            Err(err) if err.is_retryable() => {
                cursor.iterator = Some(current);
                self.wait_retry(&mut cursor.retry, &err).await;
                Ok(Step::Again)
            }
            Err(err) => Err(self.fail_source(err)),
        }
    }

    /// Counts a page, delivers its records and moves the cursor past them,
    /// and reports the shard's lag; true when the page had records.
    async fn take_page(&self, cursor: &mut Cursor, page: &S::Page) -> Result<bool, ReaderError> {
        cursor.retry.reset();
        self.stats.record_page(page.len());
        let labels = [
            ("table", self.table.name.clone()),
            ("shard", self.key.shard.to_string()),
        ];
        metrics::counter!(names::RECORDS_READ, &labels).increment(page.len() as u64);
        if let Some(millis) = page.millis_behind() {
            self.stats.record_millis_behind(&self.lag_label(), millis);
        }
        let had_records = !page.is_empty();
        let mut newest_ms = None;
        if had_records {
            let (last, newest) = self.deliver(page, cursor.last_read.as_ref()).await?;
            newest_ms = newest;
            if let Some(last) = last {
                cursor.start = ShardStart::After(last.clone());
                cursor.last_read = Some(last);
            }
        }
        let table_name: Arc<str> = Arc::from(self.table.name.as_str());
        self.stats.probes.lag.page(
            &table_name,
            &self.key,
            newest_ms,
            !had_records,
            page.millis_behind(),
        );
        Ok(had_records)
    }

    /// Logs the children a closed shard's last page announces.
    fn log_children(&self, page: &S::Page) {
        for child in page.child_shards() {
            tracing::info!(table = %self.table.name, shard = %self.key.shard,
                child = %child.id, parents = ?child.parents, "shard closed; child announced");
        }
    }

    /// After an empty page, waits the idle interval (doubling it up to
    /// `idle_poll_max`); a page with records resets it. False when shutdown
    /// came while waiting.
    async fn pause_when_idle(&self, cursor: &mut Cursor, had_records: bool) -> bool {
        if had_records {
            cursor.idle_wait = self.settings.idle_poll_min;
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(cursor.idle_wait) => {}
            () = self.cancel.cancelled() => return false,
        }
        cursor.idle_wait = (cursor.idle_wait * 2).min(self.settings.idle_poll_max);
        true
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
