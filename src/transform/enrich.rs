//! The enrichment join: a change's attributes (`on`) are matched, part by
//! part, against a dimension table's key, and the matching row's columns
//! are added to the change's new image (the old one for removes). A left
//! join: a change without a match, or without the attributes, passes on
//! unchanged. Each chunk reads one index version from start to end.

use std::sync::Arc;

use serde::Serialize;

use super::JoinConfig;
use crate::dimension::{key_display, key_text, DimensionTable, IndexReader, KeyBuilder};
use crate::metric_names as names;
use crate::model::{ChangeEvent, Item, Op};

/// One join of a table's changes against one dimension table.
#[derive(Debug)]
pub struct Join {
    table: Arc<DimensionTable>,
    on: Vec<String>,
    /// For each dimension column, the attribute it is added as, if the join adds it.
    targets: Vec<Option<String>>,
}

/// What one join did to one change (for `filter-test`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JoinReport {
    /// The dimension table.
    pub dimension: String,
    /// The change's key, parts joined with `/`; `None` when an `on`
    /// attribute is missing or neither a string nor a number.
    pub key: Option<String>,
    /// True when a row matched.
    pub matched: bool,
    /// Attributes the join added.
    pub added: Vec<String>,
}

impl Join {
    /// The join `config` describes against `table` (validation checked
    /// that the names and counts agree; this says which does not).
    pub fn new(table: Arc<DimensionTable>, config: &JoinConfig) -> Result<Self, String> {
        let spec = table.spec();
        if config.on.len() != spec.key.len() {
            return Err(format!(
                "`on` names {} attribute(s) but dimension {:?} has a key of {} column(s) ({})",
                config.on.len(),
                table.name(),
                spec.key.len(),
                spec.key.join(", ")
            ));
        }
        if let Some(unknown) = config
            .columns
            .iter()
            .flatten()
            .find(|c| !spec.columns.contains(c))
        {
            return Err(format!(
                "column {unknown:?} is not one of dimension {:?}'s columns ({})",
                table.name(),
                spec.columns.join(", ")
            ));
        }
        let targets = spec
            .columns
            .iter()
            .map(|column| {
                let added = config
                    .columns
                    .as_ref()
                    .is_none_or(|only| only.contains(column));
                added.then(|| format!("{}{column}", config.prefix))
            })
            .collect();
        Ok(Self {
            on: config.on.clone(),
            targets,
            table,
        })
    }

    /// The dimension table's name.
    pub fn dimension(&self) -> &str {
        self.table.name()
    }

    /// Joins every change of a chunk against the index in use.
    pub fn apply(&self, events: &mut [ChangeEvent]) {
        let Some(index) = self.table.current() else {
            return;
        };
        let reader = match index.reader() {
            Ok(reader) => reader,
            Err(err) => {
                tracing::error!(
                    dimension = self.dimension(),
                    "enrichment lookups failed: {err}; the chunk passes unjoined"
                );
                return;
            }
        };
        let mut key = KeyBuilder::new(self.on.len());
        let (mut matched, mut missed) = (0u64, 0u64);
        for event in events {
            match self.join_one(&reader, &mut key, event) {
                Some(_) => matched += 1,
                None => missed += 1,
            }
        }
        let dimension = self.dimension().to_owned();
        metrics::counter!(names::ENRICH_LOOKUPS, "dimension" => dimension.clone(), "result" => "matched")
            .increment(matched);
        metrics::counter!(names::ENRICH_LOOKUPS, "dimension" => dimension, "result" => "missed")
            .increment(missed);
    }

    /// Joins one change and says what happened.
    pub fn explain(&self, event: &mut ChangeEvent) -> JoinReport {
        let mut report = JoinReport {
            dimension: self.dimension().to_owned(),
            key: None,
            matched: false,
            added: Vec::new(),
        };
        let mut key = KeyBuilder::new(self.on.len());
        if let Some(image) = joined_image(event) {
            if build_key(&self.on, image, &mut key) {
                report.key = Some(key_display(key.bytes(), self.on.len()));
            }
        }
        let Some(index) = self.table.current() else {
            return report;
        };
        if let Ok(reader) = index.reader() {
            if let Some(added) = self.join_one(&reader, &mut key, event) {
                report.matched = true;
                report.added = added;
            }
        }
        report
    }

    /// Adds the matching row's columns; the names added, or `None` without a match.
    fn join_one(
        &self,
        reader: &IndexReader<'_>,
        key: &mut KeyBuilder,
        event: &mut ChangeEvent,
    ) -> Option<Vec<String>> {
        let image = joined_image(event)?;
        if !build_key(&self.on, image, key) {
            return None;
        }
        let mut added = Vec::new();
        let found = reader.lookup(key.bytes(), &mut |column, cell| {
            if let Some(Some(name)) = self.targets.get(column) {
                image.insert(name.clone(), cell.to_value());
                added.push(name.clone());
            }
        });
        match found {
            Ok(true) => Some(added),
            Ok(false) => None,
            Err(err) => {
                tracing::error!(
                    dimension = self.dimension(),
                    "an enrichment lookup failed: {err}"
                );
                None
            }
        }
    }
}

/// The image a join reads and extends: the new one, or the old one for removes.
fn joined_image(event: &mut ChangeEvent) -> Option<&mut Item> {
    let image = if event.op == Op::Remove {
        event.old_image.as_mut()
    } else {
        event.new_image.as_mut()
    };
    image?.item_mut().ok()
}

/// Builds the lookup key from the image's `on` attributes; false when one
/// is missing or neither a string nor a number.
fn build_key(on: &[String], image: &Item, key: &mut KeyBuilder) -> bool {
    key.clear();
    for attribute in on {
        match image.get(attribute).and_then(key_text) {
            Some(text) => key.push(text),
            None => return false,
        }
    }
    true
}
