//! How inferred columns (`columns = "auto"`) are typed in Parquet files.
//! Files are never rewritten: each carries the schema as it stood when it
//! was written, so every widening is allowed.

use super::parquet_columns::{field, TypedColumn};
use crate::schema::{ColumnKind, SinkKinds};
use crate::sink::clickhouse::{ClickHouseKinds, ColumnType};

/// Parquet's column types for inferred columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParquetKinds;

impl ParquetKinds {
    /// The typed column of `kind` (the same value rules as ClickHouse's).
    pub fn column_type(&self, kind: ColumnKind) -> ColumnType {
        ClickHouseKinds { bool_type: true }.column_type(kind)
    }
}

impl SinkKinds for ParquetKinds {
    fn sink_type(&self, kind: ColumnKind) -> String {
        let column = TypedColumn {
            name: String::new(),
            attribute: String::new(),
            column_type: self.column_type(kind),
        };
        field(&column).data_type().to_string()
    }

    fn can_widen(&self, _: ColumnKind, _: ColumnKind) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_arrow_types() {
        assert_eq!(ParquetKinds.sink_type(ColumnKind::Int), "Int64");
        assert_eq!(
            ParquetKinds.sink_type(ColumnKind::Decimal { scale: 6 }),
            "Decimal128(38, 6)"
        );
        assert_eq!(ParquetKinds.sink_type(ColumnKind::Json), "Utf8");
        assert!(ParquetKinds
            .sink_type(ColumnKind::TextArray)
            .starts_with("List("));
    }
}
