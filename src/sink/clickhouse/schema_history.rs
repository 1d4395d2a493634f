//! The schema history table of `columns = "auto"`: one row per column
//! added or widened, in the sink's database (`dynamo_cdc_schema_history`).
//! Workers that race to record the same change write equal rows, which
//! the ReplacingMergeTree keeps once.

use serde::Deserialize;

use super::client::{ClickHouseClient, ClickHouseError, ErrorKind};
use super::ddl::quote;
use super::tsv::push_field;
use crate::schema::{ColumnKind, SchemaEvent, UnknownKind};

/// The history table's name in the sink's database.
pub const HISTORY_TABLE: &str = "dynamo_cdc_schema_history";

const COLUMNS: &str = "`table`, `target`, `attribute`, `column`, `from_kind`, `to_kind`, \
                       `sink_type`, `version`, `recorded_at_ms`";

/// The history table of one database.
#[derive(Debug, Clone)]
pub struct HistoryTable {
    qualified: String,
}

/// One row as the server returns it (JSONEachRow).
#[derive(Debug, Deserialize)]
struct HistoryRow {
    table: String,
    target: String,
    attribute: String,
    column: String,
    from_kind: String,
    to_kind: String,
    sink_type: String,
    version: String,
    recorded_at_ms: serde_json::Value,
}

impl HistoryTable {
    /// The history table of `database`.
    pub fn new(database: &str) -> Self {
        Self {
            qualified: format!("{}.{}", quote(database), quote(HISTORY_TABLE)),
        }
    }

    /// Creates the table when missing.
    pub async fn create(&self, client: &ClickHouseClient) -> Result<(), ClickHouseError> {
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {} (`table` String, `target` String, `attribute` String, \
             `column` String, `from_kind` String, `to_kind` String, `sink_type` String, \
             `version` String, `recorded_at_ms` Int64) \
             ENGINE = ReplacingMergeTree ORDER BY (`target`, `column`, `to_kind`)",
            self.qualified
        );
        client.query(&ddl).await.map(|_| ())
    }

    /// Appends `event`, a change of target table `target`.
    pub async fn record(
        &self,
        client: &ClickHouseClient,
        target: &str,
        event: &SchemaEvent,
    ) -> Result<(), ClickHouseError> {
        let from = event.from.map(|k| k.to_string()).unwrap_or_default();
        let fields = [
            event.table.as_str(),
            target,
            &event.attribute,
            &event.column,
            &from,
            &event.to.to_string(),
            &event.sink_type,
            &event.version,
        ];
        let mut row = String::new();
        for field in fields {
            push_field(&mut row, field);
            row.push('\t');
        }
        row.push_str(&format!("{}\n", event.recorded_at_ms));
        client
            .insert(&self.qualified, COLUMNS, bytes::Bytes::from(row))
            .await
    }

    /// Every recorded change, oldest first, of the target tables whose
    /// names start with `prefix`; empty when the table does not exist.
    pub async fn read(
        &self,
        client: &ClickHouseClient,
        prefix: &str,
    ) -> Result<Vec<(String, SchemaEvent)>, ClickHouseError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {} FINAL WHERE startsWith(`target`, '{}') \
             ORDER BY `recorded_at_ms`, `version` FORMAT JSONEachRow",
            self.qualified,
            prefix.replace('\\', "\\\\").replace('\'', "\\'")
        );
        let body = match client.query(&sql).await {
            Ok(body) => body,
            // UNKNOWN_TABLE: nothing was ever recorded.
            Err(err) if err.code == Some(60) => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        body.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| parse_row(line).map_err(|problem| malformed(&self.qualified, &problem)))
            .collect()
    }
}

/// Why a history row cannot be read.
#[derive(Debug, thiserror::Error)]
enum RowError {
    /// It is not a JSON object of the history's columns.
    #[error("{source}: {line}")]
    Json {
        line: String,
        #[source]
        source: serde_json::Error,
    },
    /// Its time is not an integer.
    #[error("recorded_at_ms is not an integer: {0}")]
    RecordedAt(String),
    /// It names a column kind this version does not know.
    #[error(transparent)]
    Kind(#[from] UnknownKind),
}

fn parse_row(line: &str) -> Result<(String, SchemaEvent), RowError> {
    let row: HistoryRow = serde_json::from_str(line).map_err(|source| RowError::Json {
        line: line.to_owned(),
        source,
    })?;
    let kind = |text: &str| text.parse::<ColumnKind>();
    let recorded_at_ms = match &row.recorded_at_ms {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| RowError::RecordedAt(line.to_owned()))?;
    let from = match row.from_kind.as_str() {
        "" => None,
        text => Some(kind(text)?),
    };
    let event = SchemaEvent {
        table: row.table,
        attribute: row.attribute,
        column: row.column,
        from,
        to: kind(&row.to_kind)?,
        sink_type: row.sink_type,
        version: row.version,
        recorded_at_ms,
    };
    Ok((row.target, event))
}

fn malformed(table: &str, problem: &RowError) -> ClickHouseError {
    ClickHouseError {
        kind: ErrorKind::Fatal,
        code: None,
        message: format!("schema history {table} holds a row this version cannot read: {problem}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_with_numbers_as_text_or_numbers() {
        let line = r#"{"table":"orders","target":"ddb_orders","attribute":"price","column":"price","from_kind":"int","to_kind":"decimal(6)","sink_type":"Nullable(Decimal(38, 6))","version":"120","recorded_at_ms":"17"}"#;
        let (target, event) = parse_row(line).unwrap();
        assert_eq!(target, "ddb_orders");
        assert_eq!(event.from, Some(ColumnKind::Int));
        assert_eq!(event.recorded_at_ms, 17);
        let added = line
            .replace(r#""from_kind":"int""#, r#""from_kind":"""#)
            .replace(r#""17""#, "17");
        assert_eq!(parse_row(&added).unwrap().1.from, None);
        assert!(parse_row(&line.replace("decimal(6)", "float")).is_err());
    }
}
