//! What the transform stage does to one change, step by step, for
//! `dynamo-cdc filter-test`: which of the table's filter patterns match,
//! what its transforms and enrichment joins leave (and what each join
//! matched), and for each sink
//! whether it takes the table and what its own stage leaves. The same
//! [`Stage::apply`] and join the pipeline runs, one change at a time.

use serde::Serialize;

use super::stage::{Stage, Verdict};
use super::{JoinReport, Routes};
use crate::model::ChangeEvent;

/// One stage's work on one change.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// Indexes of the filter patterns that match; `None` when the stage has
    /// no filters (everything passes).
    pub matched: Option<Vec<usize>>,
    /// What came out.
    pub result: StageResult,
}

/// The outcome of a stage.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum StageResult {
    /// The change goes on, as shown.
    Kept(Box<ChangeEvent>),
    /// No filter pattern matched.
    Filtered,
    /// A `filter` transform dropped it.
    Skipped,
    /// A transform failed; the pipeline dead-letters the change.
    Failed(String),
}

/// One sink's view of the change.
#[derive(Debug, Clone, Serialize)]
pub struct SinkReport {
    /// The sink's name.
    pub sink: String,
    /// False when the sink's `tables` leaves the change's table out.
    pub routed: bool,
    /// The sink's own stage; `None` when it has none (it takes what the
    /// table's stage kept) or is not routed.
    pub stage: Option<StageReport>,
}

/// The whole path of one change.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The table's stage, and the change after its enrichment joins.
    pub table: StageReport,
    /// Each enrichment join of the table, in order; empty when the
    /// table's stage dropped the change.
    pub joins: Vec<JoinReport>,
    /// Each sink, in configuration order; empty when the table's stage
    /// dropped the change.
    pub sinks: Vec<SinkReport>,
}

impl Routes {
    /// Explains what the pipeline does to `event` (`sinks` has the sinks'
    /// names in the order of the routes).
    pub fn explain(&self, event: ChangeEvent, sinks: &[String]) -> Explanation {
        let table_name = event.table.clone();
        let empty = Stage::default();
        let stage = self.table_stage(&table_name).unwrap_or(&empty);
        let mut table = run(stage, event);
        let StageResult::Kept(kept) = &mut table.result else {
            return Explanation {
                table,
                joins: Vec::new(),
                sinks: Vec::new(),
            };
        };
        let joins = self
            .joins(&table_name)
            .iter()
            .map(|join| join.explain(kept))
            .collect();
        let sinks = sinks
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let routed = self.takes(index, &table_name);
                let stage = self
                    .sink(index)
                    .filter(|route| routed && !route.stage.is_empty())
                    .map(|route| run(&route.stage, kept.as_ref().clone()));
                SinkReport {
                    sink: name.clone(),
                    routed,
                    stage,
                }
            })
            .collect();
        Explanation {
            table,
            joins,
            sinks,
        }
    }
}

/// Runs one stage on one change, noting every filter that matches.
fn run(stage: &Stage, mut event: ChangeEvent) -> StageReport {
    let patterns = stage.filters().patterns();
    let matched = (!patterns.is_empty()).then(|| {
        patterns
            .iter()
            .enumerate()
            .filter(|(_, pattern)| pattern.matches(&event))
            .map(|(index, _)| index)
            .collect()
    });
    let result = match stage.apply(&mut event) {
        Ok(Verdict::Keep) => StageResult::Kept(Box::new(event)),
        Ok(Verdict::Filtered) => StageResult::Filtered,
        Ok(Verdict::Skipped) => StageResult::Skipped,
        Err(reason) => StageResult::Failed(reason.to_string()),
    };
    StageReport { matched, result }
}
