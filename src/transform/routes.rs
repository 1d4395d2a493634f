//! The transform stage of a whole pipeline: each table's stage and its
//! enrichment joins, applied once to every change before the sinks, then
//! each sink's table routing and its own stage. Changes a stage drops are
//! counted; changes a transform cannot handle are dead-lettered. Either
//! way they are acknowledged like any other, so checkpoints move past them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::stage::{Stage, Verdict};
use super::Join;
use crate::dead_letter::{DeadLetter, DeadLetterError, DeadLetters};
use crate::metric_names as names;
use crate::model::ChangeEvent;

/// Where one sink's changes come from and what it does to them.
#[derive(Debug, Clone, Default)]
pub struct SinkRoute {
    /// The sink's name (for dead letters and metrics).
    pub name: String,
    /// The tables whose changes reach the sink; every table when `None`.
    pub tables: Option<HashSet<String>>,
    /// The sink's own filters and transforms, after the table's.
    pub stage: Stage,
}

/// Every stage of a pipeline.
#[derive(Default)]
pub struct Routes {
    tables: HashMap<String, Stage>,
    joins: HashMap<String, Vec<Arc<Join>>>,
    sinks: Vec<SinkRoute>,
    dead_letters: Option<Arc<DeadLetters>>,
    on_filtered: Option<FilteredCounter>,
}

/// Told how many changes a stage dropped, each time it drops some.
pub type FilteredCounter = Arc<dyn Fn(u64) + Send + Sync>;

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes")
            .field("tables", &self.tables)
            .field("joins", &self.joins)
            .field("sinks", &self.sinks)
            .finish_non_exhaustive()
    }
}

impl Routes {
    /// Routes with the tables' stages (tables without an entry pass
    /// unchanged), each table's enrichment joins in order, and the sinks'
    /// routes in the order of the sinks' channels.
    pub fn new(
        tables: HashMap<String, Stage>,
        joins: HashMap<String, Vec<Arc<Join>>>,
        sinks: Vec<SinkRoute>,
    ) -> Self {
        let tables = tables
            .into_iter()
            .filter(|(_, stage)| !stage.is_empty())
            .collect();
        Self {
            tables,
            joins,
            sinks,
            dead_letters: None,
            on_filtered: None,
        }
    }

    /// Where failed changes go, and what counts the filtered ones.
    pub fn with_outputs(
        mut self,
        dead_letters: Arc<DeadLetters>,
        on_filtered: FilteredCounter,
    ) -> Self {
        self.dead_letters = Some(dead_letters);
        self.on_filtered = Some(on_filtered);
        self
    }

    /// The stage of `table`, if it has one that does something.
    pub fn table_stage(&self, table: &str) -> Option<&Stage> {
        self.tables.get(table)
    }

    /// The enrichment joins of `table`, in order (empty without any).
    pub fn joins(&self, table: &str) -> &[Arc<Join>] {
        self.joins.get(table).map_or(&[], Vec::as_slice)
    }

    /// The route of sink `index`.
    pub fn sink(&self, index: usize) -> Option<&SinkRoute> {
        self.sinks.get(index)
    }

    /// Applies `table`'s stage and its enrichment joins to `events`;
    /// returns the changes that go on. Unchanged, and without decoding an
    /// image, when the table has no stage and no join.
    pub fn table_events(
        &self,
        table: &str,
        events: Vec<ChangeEvent>,
    ) -> Result<Vec<ChangeEvent>, DeadLetterError> {
        let mut kept = match self.tables.get(table) {
            Some(stage) => self.run_stage(stage, table, None, events)?,
            None => events,
        };
        for join in self.joins(table) {
            join.apply(&mut kept);
        }
        Ok(kept)
    }

    /// True when sink `index` takes the changes of `table`.
    pub fn takes(&self, index: usize, table: &str) -> bool {
        self.sinks
            .get(index)
            .and_then(|route| route.tables.as_ref())
            .is_none_or(|tables| tables.contains(table))
    }

    /// The changes sink `index` receives of `events` (all of `table`):
    /// `None` when the sink has no stage and takes them as they are.
    pub fn sink_events(
        &self,
        index: usize,
        table: &str,
        events: &[ChangeEvent],
    ) -> Result<Option<Vec<ChangeEvent>>, DeadLetterError> {
        let Some(route) = self.sinks.get(index).filter(|r| !r.stage.is_empty()) else {
            return Ok(None);
        };
        self.run_stage(&route.stage, table, Some(&route.name), events.to_vec())
            .map(Some)
    }

    /// Runs one stage (the table's, or `sink`'s) over `events`, counting
    /// what it drops and dead-lettering what it fails on.
    fn run_stage(
        &self,
        stage: &Stage,
        table: &str,
        sink: Option<&str>,
        events: Vec<ChangeEvent>,
    ) -> Result<Vec<ChangeEvent>, DeadLetterError> {
        let mut kept = Vec::with_capacity(events.len());
        let mut dropped = 0u64;
        let mut failed = Vec::new();
        for mut event in events {
            match stage.apply(&mut event) {
                Ok(Verdict::Keep) => kept.push(event),
                Ok(Verdict::Filtered | Verdict::Skipped) => dropped += 1,
                Err(reason) => failed.push((event, reason.to_string())),
            }
        }
        if dropped > 0 {
            let by = sink.unwrap_or("table");
            metrics::counter!(names::CHANGES_FILTERED, "table" => table.to_owned(), "by" => by.to_owned())
                .increment(dropped);
            if let Some(count) = &self.on_filtered {
                count(dropped);
            }
        }
        if !failed.is_empty() {
            let place = sink.map_or_else(|| "transform".to_owned(), |s| format!("transform:{s}"));
            self.dead_letter(table, &place, &failed)?;
        }
        Ok(kept)
    }

    /// Writes changes a transform failed on to the dead-letter file.
    fn dead_letter(
        &self,
        table: &str,
        place: &str,
        failed: &[(ChangeEvent, String)],
    ) -> Result<(), DeadLetterError> {
        if failed.is_empty() {
            return Ok(());
        }
        for (event, reason) in failed {
            tracing::warn!(table, stage = place, sequence = %event.position.sequence, "change dead-lettered: {reason}");
        }
        let Some(dead_letters) = &self.dead_letters else {
            return Ok(());
        };
        // A change event always serializes; `null` stands in if one did not.
        let records: Vec<Box<serde_json::value::RawValue>> = failed
            .iter()
            .map(|(event, _)| serde_json::value::to_raw_value(event).unwrap_or_default())
            .collect();
        let letters: Vec<DeadLetter<'_>> = failed
            .iter()
            .zip(&records)
            .map(|((event, reason), raw)| DeadLetter {
                table,
                stage: place,
                shard: &event.position.shard,
                sequence: Some(event.position.sequence.as_str()),
                error: reason,
                record: raw,
            })
            .collect();
        dead_letters.write(&letters)
    }
}
