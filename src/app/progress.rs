//! Periodic progress lines: records read and written per second, per sink.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::coordinator::AckTracker;
use crate::stats::Stats;

/// Logs a progress line every `every` until cancelled.
pub(super) async fn report(
    stats: Arc<Stats>,
    tracker: Arc<AckTracker>,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut previous = stats.snapshot();
    let mut since = Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = cancel.cancelled() => return,
        }
        let now = stats.snapshot();
        let seconds = since.elapsed().as_secs_f64().max(0.001);
        let read_rate = (now.records_read - previous.records_read) as f64 / seconds;
        let sinks: Vec<String> = now
            .sinks
            .iter()
            .map(|(name, counters)| {
                let before = previous.sinks.get(name).map_or(0, |c| c.written);
                format!(
                    "{name}: {} written ({:.0}/s)",
                    counters.written,
                    (counters.written - before) as f64 / seconds
                )
            })
            .collect();
        tracing::info!(
            records_read = now.records_read,
            in_flight_chunks = tracker.in_flight(),
            decode_errors = now.decode_errors,
            other_table_records = now.other_table_records,
            max_millis_behind = now.max_millis_behind,
            "progress: {:.0} records/s read; {}",
            read_rate,
            sinks.join("; ")
        );
        previous = now;
        since = Instant::now();
    }
}
