//! Typed columns filled from item attributes (ClickHouse columns, Parquet columns).

use serde::Deserialize;

use super::clickhouse::ColumnType;
use super::registry::InvalidField;

/// One typed column filled from an item attribute.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnMapping {
    /// Column name in ClickHouse.
    pub name: String,
    /// Top-level attribute it comes from; defaults to `name`.
    pub attribute: Option<String>,
    /// ClickHouse type: String, Int64, UInt64, Float64, Decimal(P,S), Bool,
    /// UInt8, DateTime, Array(String), or Nullable(one of those).
    #[serde(rename = "type")]
    pub column_type: String,
    /// Only for this source table; for every table when unset.
    pub table: Option<String>,
}

impl ColumnMapping {
    /// The attribute the column is filled from.
    pub fn attribute(&self) -> &str {
        self.attribute.as_deref().unwrap_or(&self.name)
    }
}

/// Checks that every column's `type` is one the sinks can fill.
pub fn validate_column_types(columns: &[ColumnMapping]) -> Result<(), InvalidField> {
    for (index, column) in columns.iter().enumerate() {
        ColumnType::parse(&column.column_type)
            .map_err(|message| InvalidField::new(format!("columns[{index}].type"), message))?;
    }
    Ok(())
}
