//! Column kinds of values still in an image's text ([`RawValue`]): the
//! same answers as [`ColumnKind::of_value`], [`ColumnKind::holds`] and
//! [`ColumnKind::widened_for`] give for the decoded value.

use super::kind::ColumnKind;
use crate::decode::RawValue;

/// The narrowest kind that holds `value`; `None` for NULL.
pub fn raw_kind(value: &RawValue<'_>) -> Option<ColumnKind> {
    Some(match value {
        RawValue::Null => return None,
        RawValue::Bool(_) => ColumnKind::Bool,
        RawValue::N(text) => ColumnKind::of_number(text),
        RawValue::S(_) => ColumnKind::Text,
        RawValue::B(_) => ColumnKind::Binary,
        RawValue::Set(..) => ColumnKind::TextArray,
        RawValue::Nested(_) => ColumnKind::Json,
    })
}

/// True when a column of `kind` holds `value` without loss.
pub fn raw_holds(kind: ColumnKind, value: &RawValue<'_>) -> bool {
    match (kind, value) {
        (_, RawValue::Null) | (ColumnKind::Json, _) => true,
        (kind, RawValue::N(text)) => kind.holds_number(text),
        (ColumnKind::Bool, RawValue::Bool(_)) => true,
        (ColumnKind::Text, RawValue::S(_) | RawValue::Bool(_) | RawValue::B(_)) => true,
        (ColumnKind::Binary, RawValue::B(_)) => true,
        (ColumnKind::TextArray, RawValue::Set(..)) => true,
        _ => false,
    }
}

/// The kind a column of `kind` must become to hold `value` too.
pub fn raw_widened(kind: ColumnKind, value: &RawValue<'_>) -> ColumnKind {
    match raw_kind(value) {
        Some(needed) if !raw_holds(kind, value) => {
            let joined = kind.join(needed);
            if raw_holds(joined, value) {
                joined
            } else {
                ColumnKind::Json
            }
        }
        _ => kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode_value, top_level_attributes};

    #[test]
    fn raw_answers_equal_decoded_ones() {
        let json = r#"{"a":{"N":"12"},"b":{"N":"1.25"},"c":{"N":"1E-130"},"d":{"S":"x"},
            "e":{"BOOL":true},"f":{"B":"AA=="},"g":{"NS":["1"]},"h":{"M":{}},"i":{"NULL":true},
            "j":{"N":"99999999999999999999999999999999999999"}}"#;
        let kinds = [
            ColumnKind::Bool,
            ColumnKind::Int,
            ColumnKind::Decimal { scale: 6 },
            ColumnKind::Text,
            ColumnKind::Binary,
            ColumnKind::TextArray,
            ColumnKind::Json,
        ];
        let whole: serde_json::Value = serde_json::from_str(json).unwrap();
        for (name, raw) in top_level_attributes(json).unwrap() {
            let decoded = decode_value(&whole[name.as_ref()].to_string()).unwrap();
            assert_eq!(raw_kind(&raw), ColumnKind::of_value(&decoded), "{name}");
            for kind in kinds {
                assert_eq!(
                    raw_holds(kind, &raw),
                    kind.holds(&decoded),
                    "{name} in {kind}"
                );
                assert_eq!(
                    raw_widened(kind, &raw),
                    kind.widened_for(&decoded),
                    "{name} in {kind}"
                );
            }
        }
    }
}
