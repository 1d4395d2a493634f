//! Schema history: every column a sink added or widened, with the change
//! version where it took effect. Each sink keeps it in its own store (a
//! table, or a `_schema` object beside the files); `schema show` prints it.

use serde::{Deserialize, Serialize};

use super::kind::ColumnKind;
use super::live::SchemaChange;

/// One recorded schema change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaEvent {
    /// Source table.
    pub table: String,
    /// Top-level attribute.
    pub attribute: String,
    /// Column name in the sink.
    pub column: String,
    /// The kind before; `None` when the column was added.
    pub from: Option<ColumnKind>,
    /// The kind after.
    pub to: ColumnKind,
    /// The column's type in the sink's own terms (`Nullable(Int64)`, `bigint`).
    pub sink_type: String,
    /// Version (sequence number digits) of the first change that needed it.
    pub version: String,
    /// When it was recorded, milliseconds since the epoch.
    pub recorded_at_ms: i64,
}

impl SchemaEvent {
    /// The record of `change` to `table`'s target, typed `sink_type` there.
    pub fn of_change(table: &str, change: &SchemaChange, sink_type: String, now_ms: i64) -> Self {
        Self {
            table: table.to_owned(),
            attribute: change.attribute.clone(),
            column: change.column.clone(),
            from: change.from,
            to: change.to,
            sink_type,
            version: change.version.digits().to_owned(),
            recorded_at_ms: now_ms,
        }
    }

    /// `added` or `widened from <kind>`.
    pub fn action(&self) -> String {
        match self.from {
            None => "added".to_owned(),
            Some(from) => format!("widened from {from}"),
        }
    }
}

/// A plain-text table of `events`, one line each, for `schema show`.
pub fn render(events: &[SchemaEvent]) -> String {
    let mut rows = vec![[
        "TABLE".to_owned(),
        "COLUMN".to_owned(),
        "ATTRIBUTE".to_owned(),
        "KIND".to_owned(),
        "SINK TYPE".to_owned(),
        "CHANGE".to_owned(),
        "AT VERSION".to_owned(),
    ]];
    for event in events {
        rows.push([
            event.table.clone(),
            event.column.clone(),
            format!("{:?}", event.attribute),
            event.to.to_string(),
            event.sink_type.clone(),
            event.action(),
            event.version.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SequenceNumber;

    #[test]
    fn events_round_trip_through_json_and_render_as_a_table() {
        let change = SchemaChange {
            attribute: "price".into(),
            column: "price".into(),
            from: Some(ColumnKind::Int),
            to: ColumnKind::Decimal { scale: 6 },
            version: SequenceNumber::parse("000120").unwrap(),
        };
        let event = SchemaEvent::of_change("orders", &change, "numeric".into(), 7);
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.contains("\"to\":\"decimal(6)\""), "{json}");
        assert_eq!(serde_json::from_str::<SchemaEvent>(&json).unwrap(), event);
        let text = render(&[event]);
        assert!(
            text.lines().nth(1).unwrap().contains("widened from int"),
            "{text}"
        );
    }
}
