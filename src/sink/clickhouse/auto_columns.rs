//! `columns = "auto"` in ClickHouse: a typed column per top-level attribute,
//! added (`ADD COLUMN`) when the attribute first appears and widened in
//! place (`MODIFY COLUMN`) when a value no longer fits, each change recorded
//! in the history table before it is made.
//!
//! The server's columns are the truth: every plan starts from them when it
//! finds something to change, so workers that race converge. A racer's
//! column is taken as it is; an `ADD COLUMN` that finds the column there
//! already counts as done.

use std::collections::HashMap;
use std::sync::Arc;

use super::client::{ClickHouseClient, ClickHouseError};
use super::ddl::{quote, MappedColumn, TargetTable};
use super::kinds::ClickHouseKinds;
use super::schema_history::HistoryTable;
use crate::clock::now_ms;
use crate::metric_names as names;
use crate::model::{Item, SequenceNumber};
use crate::schema::{naming, ColumnKind, LiveColumn, LiveSchema, SchemaChange, SchemaEvent};

/// ClickHouse's `Cannot add column …: column with this name already exists`.
const COLUMN_EXISTS: u32 = 44;

/// The inferred columns of every target table of one sink.
pub struct AutoColumns {
    sink: String,
    kinds: ClickHouseKinds,
    history: HistoryTable,
    schemas: HashMap<Arc<str>, LiveSchema>,
}

impl AutoColumns {
    /// Creates the history table when missing and reads each target's
    /// inferred columns from the server.
    pub async fn open(
        sink: &str,
        client: &ClickHouseClient,
        database: &str,
        kinds: ClickHouseKinds,
        targets: &[&TargetTable],
    ) -> Result<Self, ClickHouseError> {
        let history = HistoryTable::new(database);
        history.create(client).await?;
        let mut auto = Self {
            sink: sink.to_owned(),
            kinds,
            history,
            schemas: HashMap::new(),
        };
        for target in targets {
            let schema = auto.load(client, target).await?;
            auto.schemas.insert(Arc::clone(&target.source), schema);
        }
        Ok(auto)
    }

    /// `target` with its inferred columns as they now stand.
    pub fn target(&self, target: &TargetTable) -> TargetTable {
        let columns = self
            .schemas
            .get(&target.source)
            .map(|schema| {
                schema
                    .columns()
                    .map(|column| MappedColumn {
                        name: column.column.clone(),
                        attribute: column.attribute.clone(),
                        column_type: self.kinds.column_type(column.kind),
                        inferred: Some(column.kind),
                    })
                    .collect()
            })
            .unwrap_or_default();
        target.with_inferred_columns(columns)
    }

    /// Adds and widens `target`'s columns for `items` (each with its
    /// change's version, in write order). Returns true when the columns
    /// changed (by this worker or, as found on the server, another).
    pub async fn evolve(
        &mut self,
        client: &ClickHouseClient,
        target: &TargetTable,
        items: &[(&Item, &SequenceNumber)],
    ) -> Result<bool, ClickHouseError> {
        let Some(schema) = self.schemas.get(&target.source) else {
            return Ok(false);
        };
        if schema.plan(items.iter().copied(), &self.kinds).is_empty() {
            return Ok(false);
        }
        // Start from the server's columns: another worker may have made
        // (some of) these changes already.
        let mut schema = self.load(client, target).await?;
        let changes = schema.plan(items.iter().copied(), &self.kinds);
        for change in &changes {
            self.make(client, target, change).await?;
            schema.apply(change);
        }
        self.schemas.insert(Arc::clone(&target.source), schema);
        Ok(true)
    }

    /// Rereads `target`'s columns from the server; true when they differ
    /// from the ones this sink wrote with.
    pub async fn refresh(
        &mut self,
        client: &ClickHouseClient,
        target: &TargetTable,
    ) -> Result<bool, ClickHouseError> {
        let fresh = self.load(client, target).await?;
        let before: Vec<&LiveColumn> = self
            .schemas
            .get(&target.source)
            .map(|s| s.columns().collect())
            .unwrap_or_default();
        let changed = fresh.columns().collect::<Vec<_>>() != before;
        self.schemas.insert(Arc::clone(&target.source), fresh);
        Ok(changed)
    }

    /// Records `change`, then makes it on the server.
    async fn make(
        &self,
        client: &ClickHouseClient,
        target: &TargetTable,
        change: &SchemaChange,
    ) -> Result<(), ClickHouseError> {
        let started = std::time::Instant::now();
        let sink_type = self.kinds.column_type(change.to).ddl();
        let event = SchemaEvent::of_change(&target.source, change, sink_type.clone(), now_ms());
        self.history.record(client, &target.name, &event).await?;
        let (verb, label) = match change.from {
            None => ("ADD", "added"),
            Some(_) => ("MODIFY", "widened"),
        };
        let ddl = format!(
            "ALTER TABLE {} {verb} COLUMN {} {sink_type}",
            target.qualified(),
            quote(&change.column)
        );
        match client.query(&ddl).await {
            Ok(_) => {}
            Err(err) if change.from.is_none() && err.code == Some(COLUMN_EXISTS) => {}
            Err(err) => return Err(err),
        }
        tracing::info!(sink = %self.sink, table = %target.qualified(), column = %change.column,
            attribute = %change.attribute, to = %change.to, version = %change.version.digits(),
            took_ms = started.elapsed().as_millis() as u64, "typed column {label}");
        metrics::counter!(names::SCHEMA_CHANGES, "sink" => self.sink.clone(),
            "table" => target.source.to_string(), "change" => label)
        .increment(1);
        Ok(())
    }

    /// `target`'s inferred columns as the server has them: every column
    /// besides the keys and the sink's own whose name maps back to an
    /// attribute (by the naming rule, or by the history for cut names).
    async fn load(
        &self,
        client: &ClickHouseClient,
        target: &TargetTable,
    ) -> Result<LiveSchema, ClickHouseError> {
        let keys: Vec<String> = target.keys.iter().map(|k| k.name.clone()).collect();
        let mut schema = LiveSchema::new(keys.clone(), target.meta_columns());
        let recorded = self.history.read(client, &target.name).await?;
        let sql = format!(
            "SELECT name, type FROM system.columns WHERE database = '{}' AND table = '{}' \
             FORMAT TabSeparated",
            target.database.replace('\'', "\\'"),
            target.name.replace('\'', "\\'")
        );
        let body = client.query(&sql).await?;
        for line in body.lines() {
            let Some((name, ddl)) = line.split_once('\t') else {
                continue;
            };
            if keys.iter().any(|k| k == name) || target.meta_columns().contains(&name) {
                continue;
            }
            let last = recorded
                .iter()
                .rev()
                .find(|(t, e)| t == &target.name && e.column == name)
                .map(|(_, event)| event);
            let attribute = last
                .map(|e| e.attribute.clone())
                .or_else(|| naming::attribute_name(name));
            let Some(attribute) = attribute else {
                continue;
            };
            match kind_of_type(ddl, last.map(|e| e.to)) {
                Some(kind) => schema.set(LiveColumn {
                    attribute,
                    column: name.to_owned(),
                    kind,
                }),
                None => {
                    tracing::warn!(sink = %self.sink, table = %target.qualified(), column = name,
                    column_type = ddl, "column has a type `columns = \"auto\"` does not make; left as it is")
                }
            }
        }
        Ok(schema)
    }
}

/// The kind a column of ClickHouse type `ddl` holds; `recorded` (the
/// history's last kind of it) tells text, binary and JSON apart, which are
/// all `Nullable(String)`.
fn kind_of_type(ddl: &str, recorded: Option<ColumnKind>) -> Option<ColumnKind> {
    let inner = ddl
        .strip_prefix("Nullable(")
        .and_then(|rest| rest.strip_suffix(')'));
    match (inner, ddl) {
        (_, "Array(String)") => Some(ColumnKind::TextArray),
        (Some("Int64"), _) => Some(ColumnKind::Int),
        (Some("UInt8" | "Bool"), _) => Some(ColumnKind::Bool),
        (Some("String"), _) => Some(match recorded {
            Some(kind @ (ColumnKind::Binary | ColumnKind::Json)) => kind,
            _ => ColumnKind::Text,
        }),
        (Some(inner), _) => inner
            .strip_prefix("Decimal(38, ")
            .and_then(|rest| rest.strip_suffix(')'))
            .and_then(|scale| scale.parse().ok())
            .map(|scale| ColumnKind::Decimal { scale }),
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_types_map_back_to_kinds() {
        assert_eq!(kind_of_type("Nullable(Int64)", None), Some(ColumnKind::Int));
        assert_eq!(
            kind_of_type("Nullable(Decimal(38, 6))", None),
            Some(ColumnKind::Decimal { scale: 6 })
        );
        assert_eq!(
            kind_of_type("Nullable(String)", Some(ColumnKind::Json)),
            Some(ColumnKind::Json)
        );
        assert_eq!(
            kind_of_type("Nullable(String)", Some(ColumnKind::Int)),
            Some(ColumnKind::Text),
            "an int widened to text"
        );
        assert_eq!(
            kind_of_type("Array(String)", None),
            Some(ColumnKind::TextArray)
        );
        assert_eq!(
            kind_of_type("String", None),
            None,
            "not a column auto makes"
        );
        assert_eq!(kind_of_type("Nullable(Float64)", None), None);
    }
}
