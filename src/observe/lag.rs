//! Lag per shard, computed when Prometheus scrapes: how far the reader is
//! behind (now minus the creation time of the newest change read, or the
//! service's MillisBehindLatest for Kinesis; 0 once the reader is at the
//! shard's current end) and how far the slowest sink is (now minus the
//! creation time of the oldest change not yet acknowledged by every sink;
//! the reader's lag when nothing is in flight). An idle table is not behind.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::coordinator::{AckTracker, ShardKey};
use crate::metric_names as names;

#[derive(Debug, Clone, Default)]
struct ShardRead {
    table: Arc<str>,
    newest_ms: Option<i64>,
    at_end: bool,
    millis_behind: Option<i64>,
}

/// What each reader last saw of its shard.
#[derive(Debug, Default)]
pub struct LagBoard {
    shards: Mutex<HashMap<ShardKey, ShardRead>>,
}

/// One shard's lag in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardLag {
    /// Source table.
    pub table: Arc<str>,
    /// The shard.
    pub key: ShardKey,
    /// The reader's lag.
    pub read_seconds: f64,
    /// The slowest sink's lag.
    pub sink_seconds: f64,
    /// Time since the shard's checkpoint last moved.
    pub checkpoint_age_seconds: f64,
}

impl LagBoard {
    /// A reader read a page: the newest change's creation time (if it had
    /// any), whether the reader is at the shard's current end (the page was
    /// empty), and MillisBehindLatest when the service gives it.
    pub fn page(
        &self,
        table: &Arc<str>,
        key: &ShardKey,
        newest_ms: Option<i64>,
        at_end: bool,
        millis_behind: Option<i64>,
    ) {
        let mut shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = shards.entry(key.clone()).or_insert_with(|| ShardRead {
            table: Arc::clone(table),
            ..ShardRead::default()
        });
        entry.at_end = at_end;
        if newest_ms.is_some() {
            entry.newest_ms = newest_ms;
        }
        entry.millis_behind = millis_behind;
    }

    /// The reader of `key` stopped (drained, or its lease went elsewhere).
    pub fn forget(&self, key: &ShardKey) {
        let removed = self
            .shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        if let Some(read) = removed {
            for name in [names::READ_LAG, names::SINK_LAG, names::CHECKPOINT_AGE] {
                metrics::gauge!(name, &labels(&read.table, key)).set(0.0);
            }
        }
    }

    /// Every shard's lag at `now_ms` (milliseconds since the Unix epoch).
    pub fn lags(&self, tracker: &AckTracker, now_ms: i64) -> Vec<ShardLag> {
        let progress = tracker.progress();
        let shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        shards
            .iter()
            .map(|(key, read)| {
                let read_ms = match (read.millis_behind, read.at_end, read.newest_ms) {
                    (Some(behind), _, _) => behind.max(0),
                    (None, true, _) | (None, false, None) => 0,
                    (None, false, Some(newest)) => (now_ms - newest).max(0),
                };
                let shard = progress.get(key);
                let unacked_ms = shard
                    .and_then(|p| p.oldest_unacked_ms)
                    .map_or(0, |oldest| (now_ms - oldest).max(0));
                ShardLag {
                    table: Arc::clone(&read.table),
                    key: key.clone(),
                    read_seconds: read_ms as f64 / 1000.0,
                    sink_seconds: read_ms.max(unacked_ms) as f64 / 1000.0,
                    checkpoint_age_seconds: shard.map_or(0.0, |p| p.checkpoint_age.as_secs_f64()),
                }
            })
            .collect()
    }

    /// Sets the lag gauges of every shard being read, at `now_ms`.
    pub fn publish(&self, tracker: &AckTracker, now_ms: i64) {
        for lag in self.lags(tracker, now_ms) {
            let labels = labels(&lag.table, &lag.key);
            metrics::gauge!(names::READ_LAG, &labels).set(lag.read_seconds);
            metrics::gauge!(names::SINK_LAG, &labels).set(lag.sink_seconds);
            metrics::gauge!(names::CHECKPOINT_AGE, &labels).set(lag.checkpoint_age_seconds);
        }
    }
}

fn labels(table: &Arc<str>, key: &ShardKey) -> [(&'static str, String); 2] {
    [
        ("table", table.to_string()),
        ("shard", key.shard.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SequenceNumber;

    fn key(shard: &str) -> ShardKey {
        ShardKey {
            stream: Arc::from("arn:s"),
            shard: Arc::from(shard),
        }
    }

    #[test]
    fn an_idle_shard_read_to_its_end_is_not_behind() {
        let (board, tracker, table) = (LagBoard::default(), AckTracker::new(), Arc::from("orders"));
        tracker.open_shard(key("a"), Arc::clone(&table), None);
        board.page(&table, &key("a"), Some(1_000), false, None);
        let lag = &board.lags(&tracker, 61_000)[0];
        assert_eq!((lag.read_seconds, lag.sink_seconds), (60.0, 60.0));
        board.page(&table, &key("a"), None, true, None);
        let lag = &board.lags(&tracker, 3_600_000)[0];
        assert_eq!((lag.read_seconds, lag.sink_seconds), (0.0, 0.0));
    }

    #[test]
    fn the_sink_lag_is_the_oldest_unacknowledged_change() {
        let (board, tracker, table) = (LagBoard::default(), AckTracker::new(), Arc::from("orders"));
        tracker.open_shard(key("a"), Arc::clone(&table), None);
        let last = SequenceNumber::parse("10").expect("sequence");
        let handle = tracker
            .register(&key("a"), last, 1, Some(5_000))
            .expect("register");
        board.page(&table, &key("a"), None, true, None);
        let lag = &board.lags(&tracker, 35_000)[0];
        assert_eq!((lag.read_seconds, lag.sink_seconds), (0.0, 30.0));
        handle.ack().expect("ack");
        assert_eq!(board.lags(&tracker, 35_000)[0].sink_seconds, 0.0);
    }

    #[test]
    fn kinesis_millis_behind_is_the_read_lag() {
        let (board, tracker, table) = (LagBoard::default(), AckTracker::new(), Arc::from("orders"));
        board.page(&table, &key("a"), Some(1_000), false, Some(2_500));
        assert_eq!(board.lags(&tracker, 99_000)[0].read_seconds, 2.5);
    }
}
