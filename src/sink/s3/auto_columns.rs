//! `columns = "auto"` in Parquet: a typed column per top-level attribute
//! (keys too: the file has no typed key columns of its own), added when
//! the attribute first appears and widened when a value no longer fits.
//! Files are never rewritten: each carries the columns as they stood when
//! it was written, so every widening is allowed.
//!
//! The `_schema` objects are the truth: each change is recorded there
//! before any file uses it, every plan that finds something to change
//! starts again from them (so racing workers converge), and a restart
//! rebuilds each table's columns from them (so nothing narrows again).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::kinds::ParquetKinds;
use super::parquet_columns::TypedColumn;
use super::parquet_format::FIXED_COLUMNS;
use super::schema_objects::{HistoryError, SchemaObjects};
use crate::clock::now_ms;
use crate::metric_names as names;
use crate::model::{AttributeValue, ChangeEvent, Item, Op, SequenceNumber};
use crate::schema::{ColumnKind, LiveColumn, LiveSchema, SchemaEvent, SinkKinds};

/// One typed column of a file and its values, one per event.
pub type FilledColumn = (TypedColumn, Vec<Option<String>>);

/// The inferred columns of every source table of one sink.
pub struct AutoColumns {
    sink: String,
    kinds: ParquetKinds,
    history: SchemaObjects,
    schemas: HashMap<Arc<str>, LiveSchema>,
}

/// The image a change's typed values come from: the new image, or the
/// old one for removes (as hand-mapped columns do).
pub fn image_of(event: &ChangeEvent) -> Option<&Item> {
    let image = if event.op == Op::Remove {
        event.old_image.as_ref()
    } else {
        event.new_image.as_ref()
    };
    image.and_then(|image| image.item().ok())
}

/// `events`' table schema rebuilt from its history. A column's kind is
/// where its chain of changes ends: the `to` no other change widens from.
/// Racers that widened one kind two ways leave two ends; the column is
/// then at their join (what the next plan would widen it to anyway).
fn rebuild(events: &[SchemaEvent]) -> LiveSchema {
    let mut schema = LiveSchema::new(Vec::new(), &FIXED_COLUMNS);
    let mut by_column: BTreeMap<&str, Vec<&SchemaEvent>> = BTreeMap::new();
    for event in events {
        by_column.entry(&event.column).or_default().push(event);
    }
    for (column, changes) in by_column {
        let ends = changes
            .iter()
            .map(|e| e.to)
            .filter(|to| !changes.iter().any(|e| e.from == Some(*to)));
        let kind = ends
            .reduce(ColumnKind::join)
            .or_else(|| changes.last().map(|e| e.to));
        let (Some(kind), Some(first)) = (kind, changes.first()) else {
            continue;
        };
        schema.set(LiveColumn {
            attribute: first.attribute.clone(),
            column: column.to_owned(),
            kind,
        });
    }
    schema
}

impl AutoColumns {
    /// Reads every table's columns back from the history.
    pub async fn open(sink: &str, history: SchemaObjects) -> Result<Self, HistoryError> {
        let mut by_table: BTreeMap<String, Vec<SchemaEvent>> = BTreeMap::new();
        for event in history.read(None).await? {
            by_table.entry(event.table.clone()).or_default().push(event);
        }
        let schemas = by_table
            .into_iter()
            .map(|(table, events)| (Arc::from(table.as_str()), rebuild(&events)))
            .collect();
        Ok(Self {
            sink: sink.to_owned(),
            kinds: ParquetKinds,
            history,
            schemas,
        })
    }

    /// Adds and widens `table`'s columns for `events` (in write order),
    /// recording each change before it is used. Returns how many changes
    /// this worker recorded.
    pub async fn evolve(
        &mut self,
        table: &Arc<str>,
        events: &[&ChangeEvent],
    ) -> Result<usize, HistoryError> {
        let items: Vec<(&Item, &SequenceNumber)> = events
            .iter()
            .filter_map(|event| image_of(event).map(|item| (item, &event.version)))
            .collect();
        let cached = self
            .schemas
            .entry(Arc::clone(table))
            .or_insert_with(|| rebuild(&[]));
        if cached.plan(items.iter().copied(), &self.kinds).is_empty() {
            return Ok(0);
        }
        // Start from the history: another worker may have made (some of)
        // these changes already.
        let mut schema = rebuild(&self.history.read(Some(table)).await?);
        let changes = schema.plan(items.iter().copied(), &self.kinds);
        for change in &changes {
            let sink_type = self.kinds.sink_type(change.to);
            let event = SchemaEvent::of_change(table, change, sink_type, now_ms());
            self.history.record(&event).await?;
            schema.apply(change);
            let label = if change.from.is_none() {
                "added"
            } else {
                "widened"
            };
            tracing::info!(sink = %self.sink, table = %table, column = %change.column,
                attribute = %change.attribute, to = %change.to,
                version = %change.version.digits(), "typed Parquet column {label}");
            metrics::counter!(names::SCHEMA_CHANGES, "sink" => self.sink.clone(),
                "table" => table.to_string(), "change" => label)
            .increment(1);
        }
        self.schemas.insert(Arc::clone(table), schema);
        Ok(changes.len())
    }

    /// `table`'s typed columns as they now stand, with their kinds.
    pub fn columns(&self, table: &str) -> Vec<(TypedColumn, ColumnKind)> {
        self.schemas
            .get(table)
            .map(|schema| {
                schema
                    .columns()
                    .map(|column| {
                        let typed = TypedColumn {
                            name: column.column.clone(),
                            attribute: column.attribute.clone(),
                            column_type: self.kinds.column_type(column.kind),
                        };
                        (typed, column.kind)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `table`'s columns filled from `events`; a value its column's kind
    /// does not hold is null there (it stays in the image). Returns the
    /// columns and how many values were left out so.
    pub fn fill(&self, table: &str, events: &[&ChangeEvent]) -> (Vec<FilledColumn>, u64) {
        let mut untyped = 0;
        let mut filled = Vec::new();
        for (column, kind) in self.columns(table) {
            let values = events
                .iter()
                .map(|event| {
                    let value = image_of(event).and_then(|item| item.get(&column.attribute));
                    let text = typed_text(&self.kinds, &column, kind, value);
                    if text.is_err() {
                        untyped += 1;
                    }
                    text.unwrap_or(None)
                })
                .collect();
            filled.push((column, values));
        }
        (filled, untyped)
    }
}

/// The JSON text of `value` in `column` of `kind`: `Ok(None)` for a
/// missing or NULL value, `Err` for one the column does not hold.
fn typed_text(
    kinds: &ParquetKinds,
    column: &TypedColumn,
    kind: ColumnKind,
    value: Option<&AttributeValue>,
) -> Result<Option<String>, ()> {
    let Some(value) = value.filter(|v| **v != AttributeValue::Null) else {
        return Ok(None);
    };
    if !kinds.holds(kind, value) {
        return Err(());
    }
    let mut out = String::new();
    column
        .column_type
        .write_json(Some(value), &mut out)
        .map_err(|_| ())?;
    Ok((out != "null").then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Number;

    fn event(column: &str, from: Option<ColumnKind>, to: ColumnKind, at: i64) -> SchemaEvent {
        SchemaEvent {
            table: "orders".into(),
            attribute: column.into(),
            column: column.into(),
            from,
            to,
            sink_type: ParquetKinds.sink_type(to),
            version: at.to_string(),
            recorded_at_ms: at,
        }
    }

    #[test]
    fn the_history_rebuilds_the_widest_kind_of_each_column() {
        let schema = rebuild(&[
            event("qty", None, ColumnKind::Int, 1),
            event("qty", Some(ColumnKind::Int), ColumnKind::Text, 3),
            // A racer recorded the narrower widening last.
            event(
                "qty",
                Some(ColumnKind::Int),
                ColumnKind::Decimal { scale: 6 },
                4,
            ),
            event("price", None, ColumnKind::Decimal { scale: 6 }, 2),
        ]);
        assert_eq!(schema.len(), 2);
        assert_eq!(schema.column("qty").map(|c| c.kind), Some(ColumnKind::Text));
        assert_eq!(
            schema.column("price").map(|c| c.kind),
            Some(ColumnKind::Decimal { scale: 6 })
        );
    }

    #[test]
    fn values_a_kind_does_not_hold_are_left_out() {
        let column = TypedColumn {
            name: "qty".into(),
            attribute: "qty".into(),
            column_type: ParquetKinds.column_type(ColumnKind::Int),
        };
        let n = |t: &str| AttributeValue::N(Number::parse(t).unwrap());
        let text =
            |v: &AttributeValue| typed_text(&ParquetKinds, &column, ColumnKind::Int, Some(v));
        assert_eq!(text(&n("42")), Ok(Some("42".into())));
        assert_eq!(text(&n("4.5")), Err(()));
        assert_eq!(text(&AttributeValue::S("x".into())), Err(()));
        assert_eq!(text(&AttributeValue::Null), Ok(None));
    }
}
