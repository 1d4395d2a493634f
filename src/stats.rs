//! Engine counters for progress logs and the final summary, and the
//! probes (readiness, lag) everything that counts also reports to.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::metric_names as names;

/// Counters of one sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkCounters {
    /// Records written.
    pub written: u64,
    /// Records rejected to the dead-letter file.
    pub rejected: u64,
    /// Batches written.
    pub batches: u64,
    /// Total time spent writing batches (retries included).
    pub write_time: Duration,
}

/// Engine-wide counters, updated by readers and sinks.
#[derive(Debug, Default)]
pub struct Stats {
    records_read: AtomicU64,
    pages_read: AtomicU64,
    decode_errors: AtomicU64,
    snapshot_items: AtomicU64,
    snapshot_pages: AtomicU64,
    other_table_records: AtomicU64,
    iterator_renewals: AtomicU64,
    filtered: AtomicU64,
    millis_behind: Mutex<BTreeMap<String, i64>>,
    sinks: Mutex<BTreeMap<String, SinkCounters>>,
    /// Readiness and lag, which readers and sinks report to beside their
    /// counters (served by the metrics endpoint when there is one).
    pub probes: crate::observe::Probes,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Records read from streams.
    pub records_read: u64,
    /// GetRecords pages read.
    pub pages_read: u64,
    /// Records that failed to decode.
    pub decode_errors: u64,
    /// Items read by snapshots (Scan).
    pub snapshot_items: u64,
    /// Scan pages read by snapshots.
    pub snapshot_pages: u64,
    /// Records of tables the pipeline does not follow (Kinesis streams
    /// carrying several tables), skipped or dead-lettered.
    pub other_table_records: u64,
    /// Shard iterators renewed after they expired.
    pub iterator_renewals: u64,
    /// Changes filters dropped (a table's or a sink's).
    pub filtered: u64,
    /// The largest `MillisBehindLatest` the service last reported for a
    /// shard being read (Kinesis), if any did.
    pub max_millis_behind: Option<i64>,
    /// Per-sink counters by sink name.
    pub sinks: BTreeMap<String, SinkCounters>,
}

impl Stats {
    /// Counts one page of `records` records.
    pub fn record_page(&self, records: usize) {
        self.pages_read.fetch_add(1, Ordering::Relaxed);
        self.records_read
            .fetch_add(records as u64, Ordering::Relaxed);
    }

    /// Counts one Scan page of `items` items read by a snapshot.
    pub fn record_snapshot_page(&self, items: usize) {
        self.snapshot_pages.fetch_add(1, Ordering::Relaxed);
        self.snapshot_items
            .fetch_add(items as u64, Ordering::Relaxed);
    }

    /// Counts records that failed to decode.
    pub fn record_decode_errors(&self, count: usize) {
        self.decode_errors
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Counts records of tables the pipeline does not follow.
    pub fn record_other_tables(&self, count: usize) {
        self.other_table_records
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Counts changes a filter dropped.
    pub fn record_filtered(&self, count: u64) {
        self.filtered.fetch_add(count, Ordering::Relaxed);
    }

    /// Counts one expired shard iterator replaced by a new one.
    pub fn record_iterator_renewal(&self) {
        self.iterator_renewals.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how far `shard` (a `stream/shard` label) is behind the
    /// newest record, as the service last said.
    pub fn record_millis_behind(&self, shard: &str, millis: i64) {
        let mut lags = self
            .millis_behind
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match lags.get_mut(shard) {
            Some(lag) => *lag = millis,
            None => {
                lags.insert(shard.to_owned(), millis);
            }
        }
    }

    /// Forgets the lag of a shard that is no longer read (drained or
    /// stopped), so a closed shard's last value does not linger.
    pub fn forget_millis_behind(&self, shard: &str) {
        self.millis_behind
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(shard);
    }

    /// Counts one successful batch write of a sink.
    pub fn record_sink_write(&self, sink: &str, written: usize, rejected: usize, took: Duration) {
        let label = [("sink", sink.to_owned())];
        metrics::counter!(names::SINK_WRITTEN, &label).increment(written as u64);
        metrics::counter!(names::SINK_REJECTED, &label).increment(rejected as u64);
        metrics::histogram!(names::SINK_BATCH_SECONDS, &label).record(took.as_secs_f64());
        self.probes.health.sink_succeeded(sink);
        let mut sinks = self.sinks.lock().unwrap_or_else(PoisonError::into_inner);
        let counters = sinks.entry(sink.to_owned()).or_default();
        counters.written += written as u64;
        counters.rejected += rejected as u64;
        counters.batches += 1;
        counters.write_time += took;
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            records_read: self.records_read.load(Ordering::Relaxed),
            pages_read: self.pages_read.load(Ordering::Relaxed),
            decode_errors: self.decode_errors.load(Ordering::Relaxed),
            snapshot_items: self.snapshot_items.load(Ordering::Relaxed),
            snapshot_pages: self.snapshot_pages.load(Ordering::Relaxed),
            other_table_records: self.other_table_records.load(Ordering::Relaxed),
            iterator_renewals: self.iterator_renewals.load(Ordering::Relaxed),
            filtered: self.filtered.load(Ordering::Relaxed),
            max_millis_behind: self
                .millis_behind
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .copied()
                .max(),
            sinks: self
                .sinks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}
