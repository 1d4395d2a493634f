//! A lease-table snapshot's segments as this worker keeps them: renewing
//! held segments with their progress folded in, taking unowned or expired
//! ones up to this worker's share, storing progress, and giving them up.

use tokio_util::sync::CancellationToken;

use super::balance::LeaseView;
use super::snapshot_items::{segment_key, SegmentItem, SegmentWrite, SnapshotItem};
use super::snapshots::LeaseSnapshots;
use super::table::{LeaseTableError, Written};
use crate::coordinator::snapshot_state::{ClaimedSegment, SegmentsView};
use crate::coordinator::SegmentProgress;

/// A segment this worker holds.
pub(super) struct HeldSegment {
    counter: u64,
    stop: CancellationToken,
    /// Progress to store with the next renewal.
    pending: Option<SegmentWrite>,
}

impl LeaseSnapshots {
    /// Renews this worker's segments and takes free ones up to its share.
    pub(super) async fn keep_segments(
        &self,
        table: &str,
        item: &SnapshotItem,
    ) -> Result<SegmentsView, LeaseTableError> {
        let run = item.run.clone().unwrap_or_default();
        let segments: Vec<SegmentItem> = self
            .table
            .segment_items(table, item.segments)
            .await?
            .into_iter()
            .filter(|s| s.run == run)
            .collect();
        self.lock().entry(table.to_owned()).or_default().run = Some(run.clone());
        self.renew_segments(table, &run, &segments).await?;
        let all_done = segments.len() == item.segments as usize && segments.iter().all(|s| s.done);
        let Some(alive) = self.ownership.alive_workers() else {
            // Not sure yet who else is there: take nothing.
            return Ok(SegmentsView {
                all_done,
                ..SegmentsView::default()
            });
        };
        let free = self.free_segments(table, &segments);
        let undone = segments.iter().filter(|s| !s.done).count();
        let share = undone.div_ceil(alive);
        let mut claimed = Vec::new();
        for segment in free {
            let holding = self.lock().get(table).map_or(0, |k| k.held.len());
            if holding >= share {
                break;
            }
            if self
                .table
                .take_segment(table, &run, segment, self.me())
                .await?
                == Written::Lost
            {
                continue;
            }
            tracing::info!(table, segment = segment.segment, from = ?segment.owner, "snapshot segment taken");
            let stop = CancellationToken::new();
            self.lock()
                .entry(table.to_owned())
                .or_default()
                .held
                .insert(
                    segment.segment,
                    HeldSegment {
                        counter: segment.counter + 1,
                        stop: stop.clone(),
                        pending: None,
                    },
                );
            claimed.push(ClaimedSegment {
                progress: progress_of(segment),
                stop,
            });
        }
        Ok(SegmentsView {
            claimed,
            all_done,
            finished_elsewhere: false,
        })
    }

    /// Unfinished segments nobody holds (or whose owner stopped renewing),
    /// in an order of this worker's own so that workers rarely race.
    fn free_segments<'s>(&self, table: &str, segments: &'s [SegmentItem]) -> Vec<&'s SegmentItem> {
        let now = self.now_ms();
        let mut tables = self.lock();
        let known = tables.entry(table.to_owned()).or_default();
        let views: Vec<LeaseView> = segments
            .iter()
            .map(|s| LeaseView {
                key: segment_key(table, s.segment),
                owner: s.owner.clone(),
                counter: s.counter,
                readable: !s.done,
            })
            .collect();
        known.watch.observe(&views, now);
        let mut free: Vec<&SegmentItem> = segments
            .iter()
            .zip(&views)
            .filter(|(s, view)| {
                !s.done
                    && !known.held.contains_key(&s.segment)
                    && (s.owner.is_none()
                        || s.owner.as_deref() == Some(self.me())
                        || known.watch.is_free(view, now, self.lease_duration))
            })
            .map(|(s, _)| s)
            .collect();
        let offset = self.me().bytes().map(u32::from).sum::<u32>();
        free.sort_by_key(|s| s.segment.wrapping_add(offset) % segments.len().max(1) as u32);
        free
    }

    async fn renew_segments(
        &self,
        table: &str,
        run: &str,
        segments: &[SegmentItem],
    ) -> Result<(), LeaseTableError> {
        let held = self.held_segments(table);
        for (segment, counter, pending) in held {
            let still_mine = segments.iter().any(|s| {
                s.segment == segment
                    && s.owner.as_deref() == Some(self.me())
                    && s.counter == counter
            });
            let written = if still_mine {
                self.table
                    .write_segment(
                        table,
                        run,
                        (segment, counter),
                        self.me(),
                        pending.as_ref(),
                        false,
                    )
                    .await?
            } else {
                Written::Lost
            };
            self.after_write(table, segment, counter, &pending, written, false);
        }
        Ok(())
    }

    /// Updates what this worker holds after an owner write of a segment.
    fn after_write(
        &self,
        table: &str,
        segment: u32,
        counter: u64,
        written_progress: &Option<SegmentWrite>,
        written: Written,
        released: bool,
    ) {
        let mut tables = self.lock();
        let Some(known) = tables.get_mut(table) else {
            return;
        };
        match written {
            Written::Done if released => {
                known.held.remove(&segment);
            }
            Written::Done => {
                if let Some(held) = known.held.get_mut(&segment) {
                    held.counter = counter + 1;
                    if held.pending == *written_progress {
                        held.pending = None;
                    }
                }
            }
            Written::Lost => {
                if let Some(held) = known.held.remove(&segment) {
                    tracing::warn!(
                        table,
                        segment,
                        "snapshot segment lost: another worker took it"
                    );
                    held.stop.cancel();
                }
            }
        }
    }

    pub(super) async fn do_save(
        &self,
        table: &str,
        progress: SegmentProgress,
    ) -> Result<(), LeaseTableError> {
        let write = SegmentWrite {
            last_key: progress.last_key.clone(),
            items: progress.items,
            pages: progress.pages,
            done: progress.done,
        };
        let counter = {
            let mut tables = self.lock();
            let Some(held) = tables
                .get_mut(table)
                .and_then(|k| k.held.get_mut(&progress.segment))
            else {
                // Not held (any more): another worker owns its progress.
                return Ok(());
            };
            if !write.done {
                held.pending = Some(write);
                return Ok(());
            }
            held.counter
        };
        let run = self.held_run(table);
        let write = Some(write);
        let written = self
            .table
            .write_segment(
                table,
                &run,
                (progress.segment, counter),
                self.me(),
                write.as_ref(),
                true,
            )
            .await?;
        self.after_write(table, progress.segment, counter, &write, written, true);
        Ok(())
    }

    /// This worker's segments of `table`: number, counter, pending progress.
    fn held_segments(&self, table: &str) -> Vec<(u32, u64, Option<SegmentWrite>)> {
        self.lock()
            .get(table)
            .map(|k| {
                k.held
                    .iter()
                    .map(|(s, h)| (*s, h.counter, h.pending.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) async fn do_release(&self, table: &str) -> Result<(), LeaseTableError> {
        let held = self.held_segments(table);
        if held.is_empty() {
            return Ok(());
        }
        let run = self.held_run(table);
        for (segment, counter, pending) in held {
            let written = self
                .table
                .write_segment(
                    table,
                    &run,
                    (segment, counter),
                    self.me(),
                    pending.as_ref(),
                    true,
                )
                .await?;
            tracing::info!(
                table,
                segment,
                released = (written == Written::Done),
                "snapshot segment released at shutdown"
            );
            self.after_write(table, segment, counter, &pending, written, true);
        }
        Ok(())
    }
}

pub(super) fn progress_of(segment: &SegmentItem) -> SegmentProgress {
    SegmentProgress {
        segment: segment.segment,
        last_key: segment.last_key.clone(),
        done: segment.done,
        items: segment.items,
        pages: segment.pages,
    }
}
