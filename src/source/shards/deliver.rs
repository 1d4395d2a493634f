//! One page through the core: order checks, dead letters, and chunks
//! published per run of one table's records.
//!
//! A Kinesis stream can carry several tables, and a chunk holds one table's
//! changes. A page is cut into runs of consecutive records of one table;
//! each run is published with the position of its last record, so every
//! chunk covers a contiguous range of the shard and the checkpoint (and a
//! sink's own exactly-once checkpoint) never passes a record that is not
//! yet durable. Records that are skipped or dead-lettered extend the
//! current run.

use std::sync::Arc;

use super::reader::{ReaderError, ShardReader};
use crate::config::DecodeErrorPolicy;
use crate::coordinator::{publish, Outgoing, PublishError};
use crate::dead_letter::DeadLetter;
use crate::decode::DecodeError;
use crate::model::{ChangeEvent, SequenceNumber};
use crate::source::shard::{Decoded, ShardSource, SourcePage};

/// Consecutive records of one table, ending at `last`.
struct Run {
    table: Option<Arc<str>>,
    events: Vec<ChangeEvent>,
    last: Option<SequenceNumber>,
}

impl Run {
    fn empty() -> Self {
        Run {
            table: None,
            events: Vec::new(),
            last: None,
        }
    }
}

/// A record to dead-letter: its index in the page, table and position if
/// known; `decode_error` is false for records of tables not followed.
struct Failure {
    index: usize,
    decode_error: bool,
    table: Option<String>,
    position: Option<SequenceNumber>,
    error: DecodeError,
}

impl<S: ShardSource> ShardReader<S> {
    /// Decodes a page, dead-letters what fails, and publishes its runs.
    /// Returns the position of the page's last readable record.
    pub(super) async fn deliver(
        &self,
        page: &S::Page,
        previous: Option<&SequenceNumber>,
    ) -> Result<Option<SequenceNumber>, ReaderError> {
        let decoded = self.source.decode(page, &self.key.shard);
        let floor = match previous {
            Some(previous) => Some(previous),
            None if self.source.versions_follow_positions() => self.after_parents.as_ref(),
            None => None,
        };
        let mut runs: Vec<Run> = vec![Run::empty()];
        let mut failures: Vec<Failure> = Vec::new();
        let mut other_tables = 0usize;
        let mut last: Option<SequenceNumber> = None;
        for (index, record) in decoded.into_iter().enumerate() {
            if let Some(position) = record.position() {
                self.check_order(position, last.as_ref().or(floor))?;
                last = Some(position.clone());
            }
            let current = runs.last().and_then(|r| r.table.clone());
            match record {
                Decoded::Event(event) => {
                    if current.as_ref().is_some_and(|t| *t != event.table) {
                        runs.push(Run::empty());
                    }
                    let run = runs
                        .last_mut()
                        .ok_or_else(|| self.internal("no run".into()))?;
                    run.table = Some(Arc::clone(&event.table));
                    run.last = Some(event.position.sequence.clone());
                    run.events.push(event);
                }
                Decoded::OtherTable { table, position } => {
                    other_tables += 1;
                    if self.dead_letter_other_tables {
                        failures.push(Failure {
                            index,
                            decode_error: false,
                            table: Some(table.clone()),
                            position: Some(position.clone()),
                            error: DecodeError::Value {
                                path: "tableName".into(),
                                message: format!(
                                    "table {table:?} is not configured on this stream"
                                ),
                            },
                        });
                    }
                    self.extend_run(&mut runs, position);
                }
                Decoded::Failed {
                    position,
                    table,
                    error,
                } => {
                    if self.table.on_decode_error == DecodeErrorPolicy::Halt {
                        return Err(ReaderError::Decode {
                            table: table.unwrap_or_else(|| self.table.name.clone()),
                            shard: self.key.shard.to_string(),
                            source: Box::new(error),
                        });
                    }
                    if let Some(position) = &position {
                        self.extend_run(&mut runs, position.clone());
                    }
                    failures.push(Failure {
                        index,
                        decode_error: true,
                        table,
                        position,
                        error,
                    });
                }
            }
        }
        if other_tables > 0 {
            self.stats.record_other_tables(other_tables);
        }
        if !failures.is_empty() {
            self.dead_letter(page, &failures)?;
        }
        self.publish_runs(runs).await?;
        Ok(last)
    }

    fn extend_run(&self, runs: &mut [Run], position: SequenceNumber) {
        if let Some(run) = runs.last_mut() {
            run.last = Some(position);
        }
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
                    other => self.internal(other.to_string()),
                })?;
        }
        Ok(())
    }

    fn dead_letter(&self, page: &S::Page, failures: &[Failure]) -> Result<(), ReaderError> {
        self.stats
            .record_decode_errors(failures.iter().filter(|f| f.decode_error).count());
        for failure in failures {
            let message = failure.error.to_string();
            let table = failure.table.as_deref().unwrap_or(&self.table.name);
            let raw_text = page.raw_json(failure.index);
            let raw = raw_text
                .as_deref()
                .and_then(|text| serde_json::from_str::<&serde_json::value::RawValue>(text).ok());
            let fallback = serde_json::value::RawValue::from_string("null".to_owned())
                .map_err(|err| self.internal(err.to_string()))?;
            let sequence = failure.position.as_ref().map(SequenceNumber::as_str);
            self.dead_letters
                .write(&[DeadLetter {
                    table,
                    stage: "decode",
                    shard: &self.key.shard,
                    sequence,
                    error: &message,
                    record: raw.unwrap_or(&fallback),
                }])
                .map_err(|err| self.internal(err.to_string()))?;
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
