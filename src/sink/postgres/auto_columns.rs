//! `columns = "auto"` in PostgreSQL: a typed column per top-level attribute,
//! added (`ADD COLUMN IF NOT EXISTS`, no table rewrite) when the attribute
//! first appears and widened (`ALTER COLUMN … TYPE … USING`) when a value no
//! longer fits. Each change and its history row commit in one transaction
//! that holds an advisory lock on the table, so racing workers take turns
//! and each plans from the columns the other left.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_postgres::{Client, GenericClient};

use super::kinds::PostgresKinds;
use super::sql::{quote, PgTable, META_COLUMNS};
use super::typed::PgColumn;
use crate::clock::now_ms;
use crate::hash::fnv1a;
use crate::metric_names as names;
use crate::model::{Item, SequenceNumber};
use crate::schema::{
    naming, ColumnKind, LiveColumn, LiveSchema, SchemaEvent, SinkKinds, UnknownKind,
};

/// The history table's name in the sink's schema.
pub const HISTORY_TABLE: &str = "dynamo_cdc_schema_history";

/// The history table of `schema`, qualified.
pub fn history_table(schema: &str) -> String {
    format!("{}.{}", quote(schema), quote(HISTORY_TABLE))
}

/// DDL of the history table: one row per change; racing workers that
/// record the same change keep one row.
pub fn create_history_table(schema: &str) -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS {};
CREATE TABLE IF NOT EXISTS {} (
    source_table text NOT NULL,
    target text NOT NULL,
    attribute text NOT NULL,
    column_name text NOT NULL,
    from_kind text,
    to_kind text NOT NULL,
    sink_type text NOT NULL,
    version text NOT NULL,
    recorded_at_ms bigint NOT NULL,
    PRIMARY KEY (target, column_name, to_kind)
);",
        quote(schema),
        history_table(schema)
    )
}

/// The inferred columns of every target table of one sink.
pub struct PgAutoColumns {
    sink: String,
    history: String,
    schemas: HashMap<Arc<str>, LiveSchema>,
}

impl PgAutoColumns {
    /// Reads each target's inferred columns (the history table must exist).
    pub async fn open(
        sink: &str,
        client: &Client,
        schema: &str,
        tables: &HashMap<Arc<str>, PgTable>,
    ) -> Result<Self, tokio_postgres::Error> {
        let mut auto = Self {
            sink: sink.to_owned(),
            history: history_table(schema),
            schemas: HashMap::new(),
        };
        for (source, table) in tables {
            let live = auto.load(client, table).await?;
            auto.schemas.insert(Arc::clone(source), live);
        }
        Ok(auto)
    }

    /// The typed columns of `source`'s target as they now stand.
    pub fn columns(&self, source: &str) -> Vec<PgColumn> {
        self.schemas
            .get(source)
            .map(|live| {
                live.columns()
                    .map(|c| PgColumn {
                        name: c.column.clone(),
                        attribute: c.attribute.clone(),
                        kind: c.kind,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Adds and widens `table`'s columns for `items` (with their changes'
    /// versions). Returns true when its columns changed.
    pub async fn evolve(
        &mut self,
        client: &mut Client,
        table: &PgTable,
        items: &[(&Item, &SequenceNumber)],
    ) -> Result<bool, tokio_postgres::Error> {
        let Some(live) = self.schemas.get(&table.source) else {
            return Ok(false);
        };
        if live.plan(items.iter().copied(), &PostgresKinds).is_empty() {
            return Ok(false);
        }
        let started = std::time::Instant::now();
        let tx = client.transaction().await?;
        let lock = fnv1a(table.qualified().as_bytes()) as i64;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])
            .await?;
        let mut live = self.load(&tx, table).await?;
        let changes = live.plan(items.iter().copied(), &PostgresKinds);
        for change in &changes {
            let sink_type = PostgresKinds.sink_type(change.to);
            let event = SchemaEvent::of_change(&table.source, change, sink_type.clone(), now_ms());
            tx.execute(
                &format!(
                    "INSERT INTO {} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                    self.history
                ),
                &[
                    &event.table,
                    &table.name,
                    &event.attribute,
                    &event.column,
                    &event.from.map(|k| k.to_string()),
                    &event.to.to_string(),
                    &event.sink_type,
                    &event.version,
                    &event.recorded_at_ms,
                ],
            )
            .await?;
            tx.batch_execute(&alter_statement(
                table,
                change.from,
                change.to,
                &change.column,
            ))
            .await?;
            live.apply(change);
        }
        tx.commit().await?;
        let took_ms = started.elapsed().as_millis() as u64;
        for change in &changes {
            let label = if change.from.is_some() {
                "widened"
            } else {
                "added"
            };
            tracing::info!(sink = %self.sink, table = %table.qualified(), column = %change.column,
                attribute = %change.attribute, to = %change.to, version = %change.version.digits(),
                took_ms, "typed column {label} (the batch's changes took {took_ms} ms together)");
            metrics::counter!(names::SCHEMA_CHANGES, "sink" => self.sink.clone(),
                "table" => table.source.to_string(), "change" => label)
            .increment(1);
        }
        self.schemas.insert(Arc::clone(&table.source), live);
        Ok(true)
    }

    /// `table`'s inferred columns as the server has them: every column
    /// besides the keys and the sink's own whose name maps back to an
    /// attribute (by the naming rule, or by the history for cut names).
    async fn load(
        &self,
        client: &impl GenericClient,
        table: &PgTable,
    ) -> Result<LiveSchema, tokio_postgres::Error> {
        let keys: Vec<String> = table.keys.iter().map(|(k, _)| k.clone()).collect();
        let mut live = LiveSchema::new(keys.clone(), &META_COLUMNS);
        let recorded = client
            .query(
                &format!(
                    "SELECT column_name, attribute, to_kind FROM {} WHERE target = $1 ORDER BY recorded_at_ms",
                    self.history
                ),
                &[&table.name],
            )
            .await?;
        let last: HashMap<String, (String, String)> = recorded
            .iter()
            .map(|row| (row.get(0), (row.get(1), row.get(2))))
            .collect();
        let found = client
            .query(
                "SELECT column_name, data_type FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2",
                &[&table.schema, &table.name],
            )
            .await?;
        for row in found {
            let (name, data_type): (String, String) = (row.get(0), row.get(1));
            if keys.contains(&name) || META_COLUMNS.contains(&name.as_str()) {
                continue;
            }
            let recorded = last.get(&name);
            let attribute = recorded
                .map(|(attribute, _)| attribute.clone())
                .or_else(|| naming::attribute_name(&name));
            let recorded_kind = recorded.and_then(|(_, kind)| kind.parse().ok());
            match (attribute, kind_of_type(&data_type, recorded_kind)) {
                (Some(attribute), Some(kind)) => live.set(LiveColumn {
                    attribute,
                    column: name,
                    kind,
                }),
                _ => tracing::debug!(sink = %self.sink, table = %table.qualified(), column = %name,
                    "column is not one `columns = \"auto\"` makes; left as it is"),
            }
        }
        Ok(live)
    }
}

/// The DDL of one change: a new column, or a widening with its conversion.
fn alter_statement(
    table: &PgTable,
    from: Option<ColumnKind>,
    to: ColumnKind,
    column: &str,
) -> String {
    let quoted = quote(column);
    let sink_type = PostgresKinds.sink_type(to);
    match from.and_then(|from| PostgresKinds.conversion(from, to, &quoted)) {
        Some(using) => format!(
            "ALTER TABLE {} ALTER COLUMN {quoted} TYPE {sink_type} USING {using}",
            table.qualified()
        ),
        None => format!(
            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {quoted} {sink_type}",
            table.qualified()
        ),
    }
}

/// The kind of a column of `data_type` (information_schema's name);
/// `recorded` (the history's last kind of it) keeps a decimal's scale.
fn kind_of_type(data_type: &str, recorded: Option<ColumnKind>) -> Option<ColumnKind> {
    Some(match data_type {
        "boolean" => ColumnKind::Bool,
        "bigint" => ColumnKind::Int,
        "numeric" => match recorded {
            Some(kind @ ColumnKind::Decimal { .. }) => kind,
            _ => ColumnKind::Decimal {
                scale: crate::schema::kind::MIN_DECIMAL_SCALE,
            },
        },
        "text" => ColumnKind::Text,
        "bytea" => ColumnKind::Binary,
        "ARRAY" => ColumnKind::TextArray,
        "jsonb" => ColumnKind::Json,
        _ => return None,
    })
}

/// Why the schema history cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryReadError {
    /// The query failed.
    #[error("cannot query {table}: {source}")]
    Query {
        /// The history table.
        table: String,
        /// The server's or the connection's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A row names a column kind this version does not know.
    #[error("{table} holds a row this version cannot read: {source}")]
    Kind {
        /// The history table.
        table: String,
        /// The unknown kind.
        #[source]
        source: UnknownKind,
    },
}

/// Every recorded change of the targets whose names start with `prefix`, oldest first.
pub async fn read_history(
    client: &Client,
    schema: &str,
    prefix: &str,
) -> Result<Vec<SchemaEvent>, HistoryReadError> {
    let table = history_table(schema);
    let rows = client
        .query(
            &format!(
                "SELECT source_table, attribute, column_name, from_kind, to_kind, sink_type, version, \
                 recorded_at_ms FROM {table} WHERE starts_with(target, $1) ORDER BY recorded_at_ms, version"
            ),
            &[&prefix],
        )
        .await
        .map_err(|source| HistoryReadError::Query {
            table: table.clone(),
            source,
        })?;
    let kind = |text: String| {
        text.parse::<ColumnKind>()
            .map_err(|source| HistoryReadError::Kind {
                table: table.clone(),
                source,
            })
    };
    rows.into_iter()
        .map(|row| {
            Ok(SchemaEvent {
                table: row.get(0),
                attribute: row.get(1),
                column: row.get(2),
                from: row.get::<_, Option<String>>(3).map(kind).transpose()?,
                to: kind(row.get(4))?,
                sink_type: row.get(5),
                version: row.get(6),
                recorded_at_ms: row.get(7),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{KeyKind, TableSchema};

    #[test]
    fn changes_add_without_a_rewrite_or_widen_with_a_conversion() {
        let schema = TableSchema::new("orders", &[("pk", KeyKind::S)]);
        let table = PgTable::new(&schema, "cdc", "").unwrap();
        assert_eq!(
            alter_statement(&table, None, ColumnKind::Int, "qty"),
            r#"ALTER TABLE "cdc"."orders" ADD COLUMN IF NOT EXISTS "qty" bigint"#
        );
        assert_eq!(
            alter_statement(&table, Some(ColumnKind::Binary), ColumnKind::Text, "b"),
            r#"ALTER TABLE "cdc"."orders" ALTER COLUMN "b" TYPE text USING encode("b", 'base64')"#
        );
        assert_eq!(kind_of_type("ARRAY", None), Some(ColumnKind::TextArray));
        assert_eq!(kind_of_type("integer", None), None);
    }
}
