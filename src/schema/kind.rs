//! The column kinds that attribute values call for, and the order in which
//! a column widens when a value no longer fits it.
//!
//! The lattice, narrowest first: `bool`, `int` (integral, within i64),
//! `decimal(s)` (at most 38 digits, `s` of them after the point), `text`
//! (any scalar as text), `binary`, `text_array` (sets), and `json` (holds
//! every value as plain JSON). Nulls fit every kind: columns are nullable.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::{decimal_shape_of, AttributeValue};

/// Most digits a decimal column holds (DynamoDB's own limit of significant digits).
pub const DECIMAL_DIGITS: u32 = 38;

/// Fewest fraction digits a new decimal column gets, so that later values
/// with a few more decimals than the first ones still fit.
pub const MIN_DECIMAL_SCALE: u32 = 6;

/// Most fraction digits of a decimal column that integers may widen into
/// (an i64 needs 19 digits before the point).
const INT_DIGITS: u32 = 19;

/// The kind of a typed column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ColumnKind {
    /// BOOL.
    Bool,
    /// N without a fraction, within i64.
    Int,
    /// N with at most `scale` fraction digits and 38 digits in all.
    Decimal {
        /// Digits after the point.
        scale: u32,
    },
    /// S; also N (its text), BOOL (`true`/`false`) and B (base64).
    Text,
    /// B.
    Binary,
    /// SS, NS (the numbers' text) and BS (base64).
    TextArray,
    /// M and L; also every other value, as plain JSON.
    Json,
}

impl ColumnKind {
    /// The narrowest kind that holds `value`; `None` for NULL.
    pub fn of_value(value: &AttributeValue) -> Option<Self> {
        Some(match value {
            AttributeValue::Null => return None,
            AttributeValue::Bool(_) => Self::Bool,
            AttributeValue::N(number) => Self::of_number(number.as_str()),
            AttributeValue::S(_) => Self::Text,
            AttributeValue::B(_) => Self::Binary,
            AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_) => {
                Self::TextArray
            }
            AttributeValue::M(_) | AttributeValue::L(_) => Self::Json,
        })
    }

    /// The narrowest kind that holds the number written `text`.
    pub fn of_number(text: &str) -> Self {
        let shape = decimal_shape_of(text);
        if shape.scale == 0 && text.parse::<i64>().is_ok() {
            Self::Int
        } else if shape.integer_digits + shape.scale.max(MIN_DECIMAL_SCALE) <= DECIMAL_DIGITS {
            Self::Decimal {
                scale: shape.scale.max(MIN_DECIMAL_SCALE),
            }
        } else if shape.integer_digits + shape.scale <= DECIMAL_DIGITS {
            Self::Decimal { scale: shape.scale }
        } else {
            Self::Text
        }
    }

    /// True when a column of this kind holds the number written `text`.
    pub fn holds_number(self, text: &str) -> bool {
        match self {
            Self::Int => decimal_shape_of(text).scale == 0 && text.parse::<i64>().is_ok(),
            Self::Decimal { scale } => {
                let shape = decimal_shape_of(text);
                shape.scale <= scale && shape.integer_digits + scale <= DECIMAL_DIGITS
            }
            Self::Text | Self::Json => true,
            _ => false,
        }
    }

    /// True when a column of this kind holds `value` without loss.
    pub fn holds(self, value: &AttributeValue) -> bool {
        match (self, value) {
            (_, AttributeValue::Null) | (Self::Json, _) => true,
            (Self::Bool, AttributeValue::Bool(_)) => true,
            (Self::Int | Self::Decimal { .. }, AttributeValue::N(n)) => {
                self.holds_number(n.as_str())
            }
            (Self::Text, value) => matches!(
                value,
                AttributeValue::S(_)
                    | AttributeValue::N(_)
                    | AttributeValue::Bool(_)
                    | AttributeValue::B(_)
            ),
            (Self::Binary, AttributeValue::B(_)) => true,
            (Self::TextArray, value) => matches!(
                value,
                AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
            ),
            _ => false,
        }
    }

    /// The narrowest kind that holds the values of both.
    pub fn join(self, other: Self) -> Self {
        use ColumnKind::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Json, _) | (_, Json) | (TextArray, _) | (_, TextArray) => Json,
            (Int, Decimal { scale }) | (Decimal { scale }, Int) if scale <= INT_DIGITS => {
                Decimal { scale }
            }
            // Any other mix of scalars (two decimal scales among them: the
            // wider scale could not hold the other's integer digits).
            _ => Text,
        }
    }

    /// The kind a column of this kind must become to hold `value` too
    /// (itself when it already does).
    pub fn widened_for(self, value: &AttributeValue) -> Self {
        match Self::of_value(value) {
            Some(kind) if !self.holds(value) => {
                let joined = self.join(kind);
                if joined.holds(value) {
                    joined
                } else {
                    Self::Json
                }
            }
            _ => self,
        }
    }
}

impl fmt::Display for ColumnKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool => f.write_str("bool"),
            Self::Int => f.write_str("int"),
            Self::Decimal { scale } => write!(f, "decimal({scale})"),
            Self::Text => f.write_str("text"),
            Self::Binary => f.write_str("binary"),
            Self::TextArray => f.write_str("text_array"),
            Self::Json => f.write_str("json"),
        }
    }
}

/// A column kind's name that is not one of [`ColumnKind`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a column kind (bool, int, decimal(S), text, binary, text_array, json)")]
pub struct UnknownKind(pub String);

impl FromStr for ColumnKind {
    type Err = UnknownKind;

    fn from_str(text: &str) -> Result<Self, UnknownKind> {
        Ok(match text {
            "bool" => Self::Bool,
            "int" => Self::Int,
            "text" => Self::Text,
            "binary" => Self::Binary,
            "text_array" => Self::TextArray,
            "json" => Self::Json,
            other => {
                let scale = other
                    .strip_prefix("decimal(")
                    .and_then(|rest| rest.strip_suffix(')'))
                    .and_then(|digits| digits.parse::<u32>().ok())
                    .filter(|scale| *scale <= DECIMAL_DIGITS)
                    .ok_or_else(|| UnknownKind(other.to_owned()))?;
                Self::Decimal { scale }
            }
        })
    }
}

impl From<ColumnKind> for String {
    fn from(kind: ColumnKind) -> Self {
        kind.to_string()
    }
}

impl TryFrom<String> for ColumnKind {
    type Error = UnknownKind;

    fn try_from(text: String) -> Result<Self, UnknownKind> {
        text.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Number;

    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(text).unwrap())
    }

    #[test]
    fn numbers_take_the_narrowest_kind_that_holds_them() {
        assert_eq!(ColumnKind::of_value(&n("42")), Some(ColumnKind::Int));
        assert_eq!(
            ColumnKind::of_value(&n("1.5")),
            Some(ColumnKind::Decimal { scale: 6 })
        );
        assert_eq!(
            ColumnKind::of_value(&n("0.123456789")),
            Some(ColumnKind::Decimal { scale: 9 })
        );
        // Beyond i64 but integral: a decimal with room for 32 digits.
        assert_eq!(
            ColumnKind::of_value(&n("99999999999999999999")),
            Some(ColumnKind::Decimal { scale: 6 })
        );
        let thirty_eight = "9".repeat(38);
        assert_eq!(
            ColumnKind::of_value(&n(&thirty_eight)),
            Some(ColumnKind::Decimal { scale: 0 })
        );
        assert_eq!(ColumnKind::of_value(&n("1E+125")), Some(ColumnKind::Text));
        assert_eq!(ColumnKind::of_value(&AttributeValue::Null), None);
    }

    #[test]
    fn columns_widen_int_to_decimal_to_text() {
        let kind = ColumnKind::Int.widened_for(&n("2.25"));
        assert_eq!(kind, ColumnKind::Decimal { scale: 6 });
        assert!(kind.holds(&n("7")));
        assert_eq!(kind.widened_for(&n("3.5")), kind);
        assert_eq!(
            kind.widened_for(&n("0.1234567")),
            ColumnKind::Text,
            "a second scale could not hold the first's integer digits"
        );
        assert_eq!(
            kind.widened_for(&AttributeValue::S("n/a".into())),
            ColumnKind::Text
        );
        assert_eq!(
            ColumnKind::Bool.widened_for(&n("1")),
            ColumnKind::Text,
            "a bool and a number share only text"
        );
    }

    #[test]
    fn documents_and_sets_end_in_json() {
        let map = AttributeValue::M(Default::default());
        assert_eq!(ColumnKind::Text.widened_for(&map), ColumnKind::Json);
        let set = AttributeValue::Ss(vec!["a".into()]);
        assert_eq!(ColumnKind::of_value(&set), Some(ColumnKind::TextArray));
        assert_eq!(ColumnKind::Int.widened_for(&set), ColumnKind::Json);
        assert!(ColumnKind::Json.holds(&n("1")));
        assert!(ColumnKind::Int.holds(&AttributeValue::Null));
    }

    #[test]
    fn names_round_trip() {
        for kind in [
            ColumnKind::Bool,
            ColumnKind::Int,
            ColumnKind::Decimal { scale: 12 },
            ColumnKind::Text,
            ColumnKind::Binary,
            ColumnKind::TextArray,
            ColumnKind::Json,
        ] {
            assert_eq!(kind.to_string().parse::<ColumnKind>(), Ok(kind));
        }
        assert!("decimal(39)".parse::<ColumnKind>().is_err());
        assert!("float".parse::<ColumnKind>().is_err());
    }
}
