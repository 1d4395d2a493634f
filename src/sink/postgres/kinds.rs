//! How inferred columns (`columns = "auto"`) are typed in PostgreSQL, and
//! which widenings `ALTER TABLE … ALTER COLUMN … TYPE` makes without loss.

use crate::model::AttributeValue;
use crate::schema::kind::DECIMAL_DIGITS;
use crate::schema::{ColumnKind, SinkKinds};

/// PostgreSQL's column types for inferred columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostgresKinds;

impl PostgresKinds {
    /// The conversion of a `from` column's values into `to`'s type, for
    /// `ALTER COLUMN … TYPE … USING`; `None` where the sink does not widen.
    pub fn conversion(&self, from: ColumnKind, to: ColumnKind, column: &str) -> Option<String> {
        match (from, to) {
            (ColumnKind::Int, ColumnKind::Decimal { .. }) => Some(format!("{column}::numeric")),
            (ColumnKind::Bool | ColumnKind::Int | ColumnKind::Decimal { .. }, ColumnKind::Text) => {
                Some(format!("{column}::text"))
            }
            (ColumnKind::Binary, ColumnKind::Text) => Some(format!("encode({column}, 'base64')")),
            // Decimals of any scale are one `numeric` column.
            (ColumnKind::Decimal { .. }, ColumnKind::Decimal { .. }) => Some(column.to_owned()),
            _ => None,
        }
    }
}

impl SinkKinds for PostgresKinds {
    fn sink_type(&self, kind: ColumnKind) -> String {
        match kind {
            ColumnKind::Bool => "boolean",
            ColumnKind::Int => "bigint",
            ColumnKind::Decimal { .. } => "numeric",
            ColumnKind::Text => "text",
            ColumnKind::Binary => "bytea",
            ColumnKind::TextArray => "text[]",
            ColumnKind::Json => "jsonb",
        }
        .to_owned()
    }

    /// bigint → numeric, and bool, numbers and bytea (as base64) → text.
    /// Text is not JSON and arrays are not JSON values of the item, so
    /// those stay as they are.
    fn can_widen(&self, from: ColumnKind, to: ColumnKind) -> bool {
        self.conversion(from, to, "c").is_some()
    }

    /// Numbers are `bigint` when integral within i64, else `numeric`,
    /// which holds every DynamoDB number exactly (any scale, 1E-130 to 1E+125).
    fn of_value(&self, value: &AttributeValue) -> Option<ColumnKind> {
        match value {
            AttributeValue::N(n) if !ColumnKind::Int.holds(value) => Some(ColumnKind::Decimal {
                scale: n.decimal_shape().scale.min(DECIMAL_DIGITS),
            }),
            _ => ColumnKind::of_value(value),
        }
    }

    fn holds(&self, kind: ColumnKind, value: &AttributeValue) -> bool {
        match (kind, value) {
            (ColumnKind::Decimal { .. }, AttributeValue::N(_)) => true,
            _ => kind.holds(value),
        }
    }

    fn widened(&self, kind: ColumnKind, value: &AttributeValue) -> ColumnKind {
        if self.holds(kind, value) {
            return kind;
        }
        match (kind, self.of_value(value)) {
            (ColumnKind::Int, Some(decimal @ ColumnKind::Decimal { .. })) => decimal,
            (kind, Some(needed)) => {
                let joined = kind.join(needed);
                if self.holds(joined, value) {
                    joined
                } else {
                    ColumnKind::Json
                }
            }
            (kind, None) => kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_widen_to_numeric_then_text() {
        let kinds = PostgresKinds;
        assert_eq!(kinds.sink_type(ColumnKind::Decimal { scale: 9 }), "numeric");
        assert_eq!(
            kinds.conversion(ColumnKind::Int, ColumnKind::Decimal { scale: 6 }, "\"q\""),
            Some("\"q\"::numeric".to_owned())
        );
        assert!(kinds.can_widen(ColumnKind::Bool, ColumnKind::Text));
        assert!(!kinds.can_widen(ColumnKind::Text, ColumnKind::Json));
        assert!(!kinds.can_widen(ColumnKind::TextArray, ColumnKind::Json));
        let n = |t: &str| AttributeValue::N(crate::model::Number::parse(t).unwrap());
        let decimal = kinds.widened(ColumnKind::Int, &n("0.123456789"));
        assert!(matches!(decimal, ColumnKind::Decimal { .. }));
        assert_eq!(
            kinds.widened(decimal, &n("1E-130")),
            decimal,
            "numeric holds any number"
        );
        assert_eq!(kinds.widened(decimal, &n("12")), decimal);
        assert_eq!(
            kinds.widened(decimal, &AttributeValue::S("x".into())),
            ColumnKind::Text
        );
    }
}
