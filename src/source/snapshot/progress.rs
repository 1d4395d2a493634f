//! A snapshot's progress: a bar on a terminal (items, items/s, segments
//! done, ETA from DynamoDB's item-count estimate), log lines otherwise, and
//! a warning when the snapshot would outlast the stream's 24-hour retention.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// DynamoDB Streams keeps records for 24 hours; warn from 20 on.
const RETENTION_WARNING: Duration = Duration::from_secs(20 * 3600);

/// Counters the segments update.
#[derive(Debug, Default)]
pub struct SnapshotCounters {
    /// Items read (this run plus what earlier runs stored).
    pub items: AtomicU64,
    /// Segments finished.
    pub segments_done: AtomicU32,
}

/// What the reporter shows.
pub struct Report {
    /// Source table.
    pub table: String,
    /// DynamoDB's estimate of the item count (0 when unknown).
    pub estimated_items: u64,
    /// All segments.
    pub total_segments: u32,
    /// Items already read by earlier runs (resumed snapshot).
    pub resumed_items: u64,
    /// Log-line interval when not on a terminal.
    pub interval: Duration,
}

/// The estimated time left, when the rate and the estimate allow one.
pub fn eta(done: u64, estimated: u64, rate: f64) -> Option<Duration> {
    (rate > 0.0 && estimated > done)
        .then(|| Duration::from_secs_f64((estimated - done) as f64 / rate))
}

/// Whether a snapshot of `estimated` items at `rate` items/s risks the
/// stream's retention (the whole snapshot, from its start).
pub fn outlasts_retention(estimated: u64, rate: f64) -> Option<Duration> {
    if rate <= 0.0 {
        return None;
    }
    let total = Duration::from_secs_f64(estimated as f64 / rate);
    (total >= RETENTION_WARNING).then_some(total)
}

/// Reports until `stop`; returns when stopped.
pub async fn report(report: Report, counters: Arc<SnapshotCounters>, stop: CancellationToken) {
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let bar = ProgressBar::with_draw_target(
            (report.estimated_items > 0).then_some(report.estimated_items),
            ProgressDrawTarget::stderr(),
        );
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {human_pos}/{human_len} items {per_sec} segments {msg} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(format!("snapshot {}", report.table));
        bar
    });
    let started = Instant::now();
    let mut warned = false;
    let tick = if terminal {
        Duration::from_millis(200)
    } else {
        report.interval
    };
    loop {
        let stopped = tokio::select! {
            () = tokio::time::sleep(tick) => false,
            () = stop.cancelled() => true,
        };
        let items = counters.items.load(Ordering::Relaxed);
        let segments = counters.segments_done.load(Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            items.saturating_sub(report.resumed_items) as f64 / elapsed
        } else {
            0.0
        };
        if let Some(bar) = &bar {
            bar.set_position(items);
            bar.set_message(format!("{segments}/{}", report.total_segments));
        } else if !stopped {
            let eta = eta(items, report.estimated_items, rate)
                .map_or_else(|| "unknown".to_owned(), |d| format!("{}s", d.as_secs()));
            tracing::info!(
                table = %report.table,
                items,
                estimated_items = report.estimated_items,
                items_per_second = rate.round(),
                segments_done = segments,
                total_segments = report.total_segments,
                eta = %eta,
                "snapshot progress"
            );
        }
        if !warned && elapsed >= 30.0 {
            if let Some(total) = outlasts_retention(report.estimated_items, rate) {
                warned = true;
                tracing::warn!(
                    table = %report.table,
                    "at {:.0} items/s the snapshot of about {} items takes {:.1} h, close to or beyond the stream's \
                     24-hour retention: changes made meanwhile may be trimmed before the stream is read. Raise \
                     snapshot_segments or the read budget",
                    rate,
                    report.estimated_items,
                    total.as_secs_f64() / 3600.0
                );
            }
        }
        if stopped {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_and_retention_warning() {
        assert_eq!(eta(50, 150, 10.0), Some(Duration::from_secs(10)));
        assert_eq!(eta(200, 150, 10.0), None);
        assert_eq!(eta(0, 150, 0.0), None);
        assert!(outlasts_retention(1_000_000_000, 10_000.0).is_some());
        assert!(outlasts_retention(1_000_000, 10_000.0).is_none());
    }
}
