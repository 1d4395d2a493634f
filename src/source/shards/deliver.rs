//! One page through the core: order checks, the decode-error policy, dead
//! letters, and the page's runs (see [`super::plan`]) published in order.

use std::sync::Arc;

use super::plan::{Failure, PagePlan, Run};
use super::reader::{ReaderError, ShardReader};
use crate::config::DecodeErrorPolicy;
use crate::coordinator::{publish, Outgoing, PublishError};
use crate::dead_letter::DeadLetter;
use crate::metric_names as names;
use crate::model::SequenceNumber;
use crate::source::shard::{Decoded, ShardSource, SourcePage};

impl<S: ShardSource> ShardReader<S> {
    /// Decodes a page, dead-letters what fails, and publishes its runs.
    /// Returns the position of the page's last readable record and the
    /// creation time of its newest change.
    pub(super) async fn deliver(
        &self,
        page: &S::Page,
        previous: Option<&SequenceNumber>,
    ) -> Result<(Option<SequenceNumber>, Option<i64>), ReaderError> {
        let decoded = self.source.decode(page, &self.key.shard);
        let last = self.check_page(&decoded, previous)?;
        let plan = PagePlan::build(decoded, self.dead_letter_other_tables);
        if plan.other_tables > 0 {
            self.stats.record_other_tables(plan.other_tables);
        }
        if !plan.failures.is_empty() {
            self.dead_letter(page, &plan.failures)?;
        }
        let newest_ms = plan
            .runs
            .iter()
            .flat_map(|run| run.events.iter().filter_map(|e| e.approx_time_ms))
            .max();
        self.publish_runs(plan.runs).await?;
        Ok((last, newest_ms))
    }

    /// Checks the page's order and the decode-error policy before anything
    /// is published; returns the last readable position.
    fn check_page(
        &self,
        decoded: &[Decoded],
        previous: Option<&SequenceNumber>,
    ) -> Result<Option<SequenceNumber>, ReaderError> {
        let floor = match previous {
            Some(previous) => Some(previous),
            None if self.source.versions_follow_positions() => self.after_parents.as_ref(),
            None => None,
        };
        let mut last: Option<&SequenceNumber> = None;
        for record in decoded {
            if let Some(position) = record.position() {
                self.check_order(position, last.or(floor))?;
                last = Some(position);
            }
            if let Decoded::Failed { table, error, .. } = record {
                if self.table.on_decode_error == DecodeErrorPolicy::Halt {
                    return Err(ReaderError::Decode {
                        table: table.clone().unwrap_or_else(|| self.table.name.clone()),
                        shard: self.key.shard.to_string(),
                        source: Box::new(error.clone()),
                    });
                }
            }
        }
        Ok(last.cloned())
    }

    /// Positions grow within a shard; with versions that follow positions,
    /// a child's first record also follows its parents' last.
    fn check_order(
        &self,
        position: &SequenceNumber,
        bound: Option<&SequenceNumber>,
    ) -> Result<(), ReaderError> {
        match bound {
            Some(bound) if position <= bound => Err(ReaderError::OutOfOrder {
                table: self.table.name.clone(),
                shard: self.key.shard.to_string(),
                previous: bound.to_string(),
                got: position.to_string(),
            }),
            _ => Ok(()),
        }
    }

    async fn publish_runs(&self, runs: Vec<Run>) -> Result<(), ReaderError> {
        let lead: Arc<str> = Arc::from(self.table.name.as_str());
        for run in runs {
            let Some(last) = run.last else { continue };
            let table = run.table.unwrap_or_else(|| Arc::clone(&lead));
            let outgoing = Outgoing::events(Arc::clone(&table), run.events);
            publish(&self.tracker, &self.sinks, &self.key, last, outgoing)
                .await
                .map_err(|err| match err {
                    PublishError::SinkGone { sink } => ReaderError::SinkGone {
                        table: table.to_string(),
                        sink,
                    },
                    other => self.publish_failed(other),
                })?;
        }
        Ok(())
    }

    fn dead_letter(&self, page: &S::Page, failures: &[Failure]) -> Result<(), ReaderError> {
        let decode_errors = failures.iter().filter(|f| f.decode_error).count();
        self.stats.record_decode_errors(decode_errors);
        metrics::counter!(names::DECODE_ERRORS, "table" => self.table.name.clone())
            .increment(decode_errors as u64);
        for failure in failures {
            let message = failure.error.to_string();
            let table = failure.table.as_deref().unwrap_or(&self.table.name);
            let raw_text = page.raw_json(failure.index);
            let raw = raw_text
                .as_deref()
                .and_then(|text| serde_json::from_str::<&serde_json::value::RawValue>(text).ok());
            let sequence = failure.position.as_ref().map(SequenceNumber::as_str);
            self.dead_letters
                .write(&[DeadLetter {
                    table,
                    stage: "decode",
                    shard: &self.key.shard,
                    sequence,
                    error: &message,
                    record: raw.unwrap_or(serde_json::value::RawValue::NULL),
                }])
                .map_err(|err| self.dead_letter_failed(err))?;
            tracing::error!(
                table = %table,
                shard = %self.key.shard,
                path = %self.dead_letters.path_for(table).display(),
                "record written to the dead-letter file: {message}"
            );
        }
        Ok(())
    }
}
