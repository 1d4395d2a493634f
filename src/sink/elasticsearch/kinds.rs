//! How inferred attributes (`mapping = "auto"`) are mapped in Elasticsearch:
//! the field type of each column kind, which values a mapped field takes
//! without refusing the document, and the suffixed field a value that does
//! not fit goes to instead (a mapped field's type never changes).

use serde_json::{json, Value};

use crate::model::{AttributeValue, KeyKind};
use crate::schema::{ColumnKind, SinkKinds};

/// Longest keyword (in characters) the sink's keyword fields index: Lucene
/// refuses terms above 32 766 bytes, and 8 191 characters of UTF-8 stay
/// below it. Longer strings are kept in `_source`, unindexed.
pub const KEYWORD_IGNORE_ABOVE: u32 = 8191;

/// The field types the sink maps, and `Other` for any type it did not
/// map itself (found in the index, from `index_body_file` or an operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    /// `boolean`.
    Boolean,
    /// `long`.
    Long,
    /// `double`.
    Double,
    /// `keyword` (with `ignore_above`).
    Keyword,
    /// `binary` (base64).
    Binary,
    /// `object` with `enabled: false`: kept in `_source`, not parsed.
    Stored,
    /// Any other mapping, by its `type`; the sink leaves it to that mapping.
    Other(String),
}

impl FieldType {
    /// The field type of an inferred column of `kind`.
    pub fn of_kind(kind: ColumnKind) -> Self {
        match kind {
            ColumnKind::Bool => Self::Boolean,
            ColumnKind::Int => Self::Long,
            ColumnKind::Decimal { .. } => Self::Double,
            ColumnKind::Text | ColumnKind::TextArray => Self::Keyword,
            ColumnKind::Binary => Self::Binary,
            ColumnKind::Json => Self::Stored,
        }
    }

    /// The field type of a key attribute: strings are keywords, numbers
    /// doubles (a double takes every DynamoDB number; `_source` and `_id`
    /// keep its digits), binaries binary.
    pub fn of_key(kind: KeyKind) -> Self {
        match kind {
            KeyKind::S => Self::Keyword,
            KeyKind::N => Self::Double,
            KeyKind::B => Self::Binary,
        }
    }

    /// The column kind a key of `kind` is recorded with in the history.
    pub fn key_column_kind(kind: KeyKind) -> ColumnKind {
        match kind {
            KeyKind::S => ColumnKind::Text,
            KeyKind::N => ColumnKind::Decimal {
                scale: crate::schema::kind::MIN_DECIMAL_SCALE,
            },
            KeyKind::B => ColumnKind::Binary,
        }
    }

    /// The type as a mapping reports it (`long`, `object` for `Stored`).
    pub fn name(&self) -> &str {
        match self {
            Self::Boolean => "boolean",
            Self::Long => "long",
            Self::Double => "double",
            Self::Keyword => "keyword",
            Self::Binary => "binary",
            Self::Stored => "object",
            Self::Other(name) => name,
        }
    }

    /// The field's mapping for `PUT <index>/_mapping`; `None` for `Other`
    /// (the sink never maps a type it does not make).
    pub fn mapping(&self) -> Option<Value> {
        Some(match self {
            Self::Keyword => json!({"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}),
            Self::Stored => json!({"type": "object", "enabled": false}),
            Self::Other(_) => return None,
            plain => json!({"type": plain.name()}),
        })
    }

    /// The type of one field of `GET <index>/_mapping`: an object that is
    /// not parsed is `Stored`; an object with sub-fields, and every type
    /// the sink does not map, are `Other`.
    pub fn from_mapping(field: &Value) -> Self {
        let enabled = field["enabled"].as_bool().unwrap_or(true);
        match field["type"].as_str() {
            Some("object") | None if !enabled => Self::Stored,
            Some("boolean") => Self::Boolean,
            Some("long") => Self::Long,
            Some("double") => Self::Double,
            Some("keyword") => Self::Keyword,
            Some("binary") => Self::Binary,
            Some(other) => Self::Other(other.to_owned()),
            None => Self::Other("object".to_owned()),
        }
    }

    /// True when a field of this type takes `value` as the sink writes it
    /// (numbers as JSON numbers or strings, by the `numbers` setting), so
    /// the document is not refused. `Other` takes everything: the sink
    /// leaves values to a mapping it did not make.
    pub fn fits(&self, value: &AttributeValue) -> bool {
        match (self, value) {
            (_, AttributeValue::Null) | (Self::Stored | Self::Other(_), _) => true,
            (Self::Boolean, AttributeValue::Bool(_)) => true,
            (Self::Long, value) => ColumnKind::Int.holds(value),
            // Every DynamoDB number is a finite double (1E-130 to 9.9E+125);
            // a double field takes the text of those written as strings.
            (Self::Double, AttributeValue::N(_)) => true,
            (Self::Keyword, value) => !matches!(value, AttributeValue::M(_) | AttributeValue::L(_)),
            (Self::Binary, AttributeValue::B(_)) => true,
            _ => false,
        }
    }
}

/// The suffix of the field that takes values of `kind` when the attribute's
/// own field does not: `__b` bool, `__n` number (int and decimal alike, as
/// a double), `__s` text, `__bin` binary, `__a` set, `__j` map or list.
pub fn suffix(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Bool => "__b",
        ColumnKind::Int | ColumnKind::Decimal { .. } => "__n",
        ColumnKind::Text => "__s",
        ColumnKind::Binary => "__bin",
        ColumnKind::TextArray => "__a",
        ColumnKind::Json => "__j",
    }
}

/// The kind a suffixed field is mapped with for a value of `kind` (every
/// number in one double field).
pub fn suffixed_kind(kind: ColumnKind) -> ColumnKind {
    match kind {
        ColumnKind::Int | ColumnKind::Decimal { .. } => ColumnKind::Decimal {
            scale: crate::schema::kind::MIN_DECIMAL_SCALE,
        },
        other => other,
    }
}

/// Elasticsearch's field types for inferred columns; a mapped field's
/// type cannot change, so nothing widens in place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ElasticsearchKinds;

impl SinkKinds for ElasticsearchKinds {
    fn sink_type(&self, kind: ColumnKind) -> String {
        match FieldType::of_kind(kind) {
            FieldType::Stored => "object (enabled: false)".to_owned(),
            other => other.name().to_owned(),
        }
    }

    /// Never: Elasticsearch refuses to change a mapped field's type.
    fn can_widen(&self, _from: ColumnKind, _to: ColumnKind) -> bool {
        false
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
    fn every_kind_has_a_field_that_takes_its_values() {
        let values = [
            AttributeValue::Bool(true),
            n("42"),
            n("2.5"),
            n(&"9".repeat(38)),
            n("1E+125"),
            AttributeValue::S("x".into()),
            AttributeValue::B(vec![1, 2]),
            AttributeValue::Ss(vec!["a".into()]),
            AttributeValue::M(Default::default()),
            AttributeValue::L(vec![n("1")]),
        ];
        for value in &values {
            let kind = ColumnKind::of_value(value).unwrap();
            assert!(FieldType::of_kind(kind).fits(value), "{value:?}");
            let suffixed = FieldType::of_kind(suffixed_kind(kind));
            assert!(suffixed.fits(value), "{value:?} in {suffixed:?}");
        }
    }

    #[test]
    fn values_of_another_type_do_not_fit() {
        assert!(!FieldType::Long.fits(&n("2.5")));
        assert!(!FieldType::Long.fits(&AttributeValue::S("1".into())));
        assert!(FieldType::Double.fits(&n("12345678901234567890123456789")));
        assert!(!FieldType::Keyword.fits(&AttributeValue::M(Default::default())));
        assert!(FieldType::Keyword.fits(&n("7")));
        assert!(!FieldType::Boolean.fits(&n("1")));
        assert!(FieldType::Stored.fits(&AttributeValue::S("x".into())));
        assert!(FieldType::Other("date".into()).fits(&n("1")));
    }

    #[test]
    fn mappings_read_back_as_the_types_written() {
        for field in [
            FieldType::Boolean,
            FieldType::Long,
            FieldType::Double,
            FieldType::Keyword,
            FieldType::Binary,
            FieldType::Stored,
        ] {
            let mapping = field.mapping().unwrap();
            assert_eq!(FieldType::from_mapping(&mapping), field, "{mapping}");
        }
        assert_eq!(
            FieldType::from_mapping(&json!({"properties": {"a": {"type": "long"}}})),
            FieldType::Other("object".into())
        );
        assert_eq!(
            FieldType::from_mapping(&json!({"type": "date"})),
            FieldType::Other("date".into())
        );
        assert!(FieldType::Other("date".into()).mapping().is_none());
    }

    #[test]
    fn suffixes_are_distinct_and_nothing_widens() {
        let kinds = [
            ColumnKind::Bool,
            ColumnKind::Int,
            ColumnKind::Text,
            ColumnKind::Binary,
            ColumnKind::TextArray,
            ColumnKind::Json,
        ];
        let suffixes: std::collections::BTreeSet<_> = kinds.iter().map(|k| suffix(*k)).collect();
        assert_eq!(suffixes.len(), kinds.len());
        assert_eq!(suffix(ColumnKind::Decimal { scale: 6 }), "__n");
        let kinds = ElasticsearchKinds;
        assert!(!kinds.can_widen(ColumnKind::Int, ColumnKind::Decimal { scale: 6 }));
        assert_eq!(kinds.sink_type(ColumnKind::Decimal { scale: 9 }), "double");
        assert_eq!(kinds.sink_type(ColumnKind::Json), "object (enabled: false)");
    }
}
