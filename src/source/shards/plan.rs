//! Cutting a decoded page into chunks (pure, unit-tested).
//!
//! A Kinesis stream can carry several tables, and a chunk holds one table's
//! changes. A page is cut into runs of consecutive records of one table;
//! each run is published with the position of its last record, so every
//! chunk covers a contiguous range of the shard and the checkpoint (and a
//! sink's own exactly-once checkpoint) never passes a record that is not
//! yet durable. Records that are skipped or dead-lettered extend the
//! current run.

use std::sync::Arc;

use crate::decode::DecodeError;
use crate::model::{ChangeEvent, SequenceNumber};
use crate::source::shard::Decoded;

/// Consecutive records of one table, ending at `last` (`table` is `None`
/// for a run of skipped or failed records only).
#[derive(Debug)]
pub(super) struct Run {
    pub(super) table: Option<Arc<str>>,
    pub(super) events: Vec<ChangeEvent>,
    pub(super) last: Option<SequenceNumber>,
}

/// A record to dead-letter: its index in the page, table and position if
/// known; `decode_error` is false for records of tables not followed.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) index: usize,
    pub(super) decode_error: bool,
    pub(super) table: Option<String>,
    pub(super) position: Option<SequenceNumber>,
    pub(super) error: DecodeError,
}

/// What to do with one page.
#[derive(Debug, Default)]
pub(super) struct PagePlan {
    /// Chunks to publish, in order; positions grow from one to the next.
    pub(super) runs: Vec<Run>,
    /// Records for the dead-letter file.
    pub(super) failures: Vec<Failure>,
    /// Records of tables not followed.
    pub(super) other_tables: usize,
}

impl PagePlan {
    /// Cuts `decoded` into runs; records of other tables become failures
    /// too when `dead_letter_other_tables`.
    pub(super) fn build(decoded: Vec<Decoded>, dead_letter_other_tables: bool) -> Self {
        let mut plan = PagePlan::default();
        for (index, record) in decoded.into_iter().enumerate() {
            match record {
                Decoded::Event(event) => plan.push_event(event),
                Decoded::OtherTable { table, position } => {
                    plan.other_tables += 1;
                    plan.extend(position.clone());
                    if dead_letter_other_tables {
                        plan.failures.push(Failure {
                            index,
                            decode_error: false,
                            error: DecodeError::Value {
                                path: "tableName".into(),
                                message: format!(
                                    "table {table:?} is not configured on this stream"
                                ),
                            },
                            table: Some(table),
                            position: Some(position),
                        });
                    }
                }
                Decoded::Failed {
                    position,
                    table,
                    error,
                } => {
                    if let Some(position) = &position {
                        plan.extend(position.clone());
                    }
                    plan.failures.push(Failure {
                        index,
                        decode_error: true,
                        table,
                        position,
                        error,
                    });
                }
            }
        }
        plan
    }

    fn push_event(&mut self, event: ChangeEvent) {
        let same_table = match self.runs.last() {
            Some(run) => run.table.as_ref().is_none_or(|t| *t == event.table),
            None => false,
        };
        if !same_table {
            self.runs.push(Run {
                table: None,
                events: Vec::new(),
                last: None,
            });
        }
        if let Some(run) = self.runs.last_mut() {
            run.table = Some(Arc::clone(&event.table));
            run.last = Some(event.position.sequence.clone());
            run.events.push(event);
        }
    }

    /// A skipped or failed record at `position`: the current run covers it.
    fn extend(&mut self, position: SequenceNumber) {
        match self.runs.last_mut() {
            Some(run) => run.last = Some(position),
            None => self.runs.push(Run {
                table: None,
                events: Vec::new(),
                last: Some(position),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Item, Op, Position};

    fn seq(n: u64) -> SequenceNumber {
        SequenceNumber::parse(&n.to_string()).unwrap()
    }

    fn event(table: &str, n: u64) -> Decoded {
        Decoded::Event(ChangeEvent {
            table: Arc::from(table),
            op: Op::Insert,
            keys: Item::new(),
            new_image: None,
            old_image: None,
            position: Position {
                shard: Arc::from("s"),
                sequence: seq(n),
            },
            version: seq(n),
            approx_time_ms: None,
            ttl_delete: false,
            event_id: n.to_string(),
            size_bytes: 1,
        })
    }

    fn failed(n: u64) -> Decoded {
        Decoded::Failed {
            position: Some(seq(n)),
            table: None,
            error: DecodeError::Page("bad".into()),
        }
    }

    fn other(n: u64) -> Decoded {
        Decoded::OtherTable {
            table: "x".into(),
            position: seq(n),
        }
    }

    fn shape(plan: &PagePlan) -> Vec<(Option<String>, usize, Option<u64>)> {
        plan.runs
            .iter()
            .map(|r| {
                (
                    r.table.as_deref().map(str::to_owned),
                    r.events.len(),
                    r.last.as_ref().map(|l| l.digits().parse().unwrap()),
                )
            })
            .collect()
    }

    #[test]
    fn one_table_is_one_chunk_ending_at_the_last_record() {
        let plan = PagePlan::build(
            vec![event("a", 1), failed(2), event("a", 3), other(4)],
            false,
        );
        assert_eq!(shape(&plan), [(Some("a".into()), 2, Some(4))]);
        assert_eq!(plan.failures.len(), 1);
        assert_eq!(plan.other_tables, 1);
    }

    #[test]
    fn interleaved_tables_make_contiguous_runs_in_order() {
        let plan = PagePlan::build(
            vec![
                event("a", 1),
                event("b", 2),
                event("b", 3),
                other(4),
                event("a", 5),
            ],
            true,
        );
        assert_eq!(
            shape(&plan),
            [
                (Some("a".into()), 1, Some(1)),
                (Some("b".into()), 2, Some(4)),
                (Some("a".into()), 1, Some(5)),
            ]
        );
        assert_eq!(plan.failures.len(), 1);
        assert!(!plan.failures[0].decode_error);
    }

    #[test]
    fn leading_skips_join_the_first_run_and_a_page_of_skips_still_advances() {
        let plan = PagePlan::build(vec![other(1), failed(2), event("a", 3)], false);
        assert_eq!(shape(&plan), [(Some("a".into()), 1, Some(3))]);
        let skipped = PagePlan::build(vec![other(7), other(8)], false);
        assert_eq!(shape(&skipped), [(None, 0, Some(8))]);
        let unreadable = PagePlan::build(
            vec![Decoded::Failed {
                position: None,
                table: None,
                error: DecodeError::Page("?".into()),
            }],
            false,
        );
        assert!(unreadable.runs.is_empty());
        assert_eq!(unreadable.failures.len(), 1);
    }

    #[test]
    fn each_failure_keeps_its_record_index_in_the_page() {
        // Dead letters pair a failure with the raw record at its index: a
        // failure without a position (its raw record did not even parse)
        // must not shift the ones after it.
        let unreadable = Decoded::Failed {
            position: None,
            table: None,
            error: DecodeError::Page("?".into()),
        };
        let plan = PagePlan::build(
            vec![failed(1), unreadable, event("a", 3), other(4), failed(5)],
            true,
        );
        let indexes: Vec<usize> = plan.failures.iter().map(|f| f.index).collect();
        assert_eq!(indexes, [0, 1, 3, 4]);
    }
}
