//! How inferred columns (`columns = "auto"`) are typed in ClickHouse, and
//! which widenings `ALTER TABLE … MODIFY COLUMN` makes without loss.

use super::column_type::ColumnType;
use crate::schema::{ColumnKind, SinkKinds};

/// ClickHouse's column types for inferred columns, on a server with or
/// without a `Bool` type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickHouseKinds {
    /// The server has `Bool` (21.12+); `UInt8` otherwise.
    pub bool_type: bool,
}

impl ClickHouseKinds {
    /// The column type of `kind`: nullable scalars, a non-null array for sets
    /// (a missing set is `[]`), JSON text in a `String`.
    pub fn column_type(&self, kind: ColumnKind) -> ColumnType {
        let scalar = match kind {
            ColumnKind::Bool => ColumnType::Bool {
                name: if self.bool_type { "Bool" } else { "UInt8" },
            },
            ColumnKind::Int => ColumnType::Int64,
            ColumnKind::Decimal { scale } => ColumnType::Decimal {
                precision: crate::schema::kind::DECIMAL_DIGITS,
                scale,
            },
            ColumnKind::Text | ColumnKind::Binary => ColumnType::String,
            ColumnKind::Json => ColumnType::Json,
            ColumnKind::TextArray => return ColumnType::ArrayString,
        };
        ColumnType::Nullable(Box::new(scalar))
    }
}

impl SinkKinds for ClickHouseKinds {
    fn sink_type(&self, kind: ColumnKind) -> String {
        self.column_type(kind).ddl()
    }

    /// Int64 → Decimal(38, s) and numbers → String convert exactly (a
    /// decimal's text keeps its scale's zeros: `1.500000`); binary is
    /// already base64 text. A `UInt8` bool would become `1`, and text is
    /// not JSON, so those stay as they are.
    fn can_widen(&self, from: ColumnKind, to: ColumnKind) -> bool {
        matches!(
            (from, to),
            (ColumnKind::Int, ColumnKind::Decimal { .. })
                | (
                    ColumnKind::Int | ColumnKind::Decimal { .. } | ColumnKind::Binary,
                    ColumnKind::Text
                )
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_nullable_types_and_widen_numbers_only() {
        let old = ClickHouseKinds { bool_type: false };
        assert_eq!(old.sink_type(ColumnKind::Bool), "Nullable(UInt8)");
        assert_eq!(
            old.sink_type(ColumnKind::Decimal { scale: 6 }),
            "Nullable(Decimal(38, 6))"
        );
        assert_eq!(old.sink_type(ColumnKind::TextArray), "Array(String)");
        assert_eq!(old.sink_type(ColumnKind::Json), "Nullable(String)");
        assert!(old.can_widen(ColumnKind::Int, ColumnKind::Decimal { scale: 6 }));
        assert!(old.can_widen(ColumnKind::Decimal { scale: 6 }, ColumnKind::Text));
        assert!(!old.can_widen(ColumnKind::Bool, ColumnKind::Text));
        assert!(!old.can_widen(ColumnKind::Text, ColumnKind::Json));
    }
}
