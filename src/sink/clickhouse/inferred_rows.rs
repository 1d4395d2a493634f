//! The inferred columns' fields of one row (`columns = "auto"`), written
//! from the image's text without decoding the item: each top-level value
//! is found in place and formatted for its column. A value of an attribute
//! without a column, or one that needs a wider column the sink can make,
//! marks the row *unplanned*: the batch's columns are evolved and the rows
//! encoded again. A value no column the sink can make holds is left out
//! (NULL, or `[]` for a set) and counted; it stays in `_item`.

use super::column_type::decimal_text_of;
use super::ddl::MappedColumn;
use super::kinds::ClickHouseKinds;
use super::tsv::{push_field, push_json_value};
use crate::decode::{top_level_attributes, RawAttribute, RawValue};
use crate::model::{Image, KeyAttribute};
use crate::schema::kind::DECIMAL_DIGITS;
use crate::schema::raw::{raw_holds, raw_widened};
use crate::schema::{ColumnKind, SinkKinds};

/// What writing one row's inferred columns found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Findings {
    /// Values left out of columns that cannot hold them.
    pub untyped: u32,
    /// A value needs a column (or a wider one) the sink can make.
    pub unplanned: bool,
}

/// Appends the inferred `columns`' fields (each after a tab) for `image`,
/// whose key attributes are `keys`; `None` when the image's text is not one
/// the in-place reader takes, or a column is not inferred (the caller then
/// drops what was appended and writes from the decoded item).
pub fn write_inferred(
    columns: &[MappedColumn],
    keys: &[KeyAttribute],
    image: &Image,
    out: &mut String,
) -> Option<Findings> {
    let text = image.json_text();
    let attributes = top_level_attributes(&text)?;
    let mut findings = Findings::default();
    let mut found = 0;
    for column in columns {
        out.push('\t');
        let kind = column.inferred?;
        let value = attributes
            .iter()
            .find(|(name, _)| *name == column.attribute)
            .map(|(_, value)| value);
        match value {
            None | Some(RawValue::Null) => out.push_str(column.column_type.tsv_default()),
            Some(value) => {
                found += 1;
                if !raw_holds(kind, value) || !write_value(kind, value, out) {
                    out.push_str(column.column_type.tsv_default());
                    let wanted = raw_widened(kind, value);
                    if (ClickHouseKinds { bool_type: false }).can_widen(kind, wanted) {
                        findings.unplanned = true;
                    } else {
                        findings.untyped += 1;
                    }
                }
            }
        }
    }
    if found < non_null(&attributes, keys) {
        // An attribute without a column.
        findings.unplanned = true;
    }
    Some(findings)
}

/// Attributes with a value, keys aside (they have columns of their own).
fn non_null(attributes: &[RawAttribute<'_>], keys: &[KeyAttribute]) -> usize {
    attributes
        .iter()
        .filter(|(name, value)| *value != RawValue::Null && !keys.iter().any(|k| k.name == *name))
        .count()
}

/// Writes `value` (which `kind` holds) as a TabSeparated field; false when
/// it turns out not to fit (nothing usable was written).
fn write_value(kind: ColumnKind, value: &RawValue<'_>, out: &mut String) -> bool {
    match (kind, value) {
        (ColumnKind::Json, value) => match value.plain_json() {
            Some(json) => push_field(out, &json),
            None => return false,
        },
        (ColumnKind::Bool, RawValue::Bool(b)) => out.push(if *b { '1' } else { '0' }),
        (ColumnKind::Int, RawValue::N(text)) => out.push_str(text),
        (ColumnKind::Decimal { scale }, RawValue::N(text)) => {
            match decimal_text_of(text, DECIMAL_DIGITS, scale) {
                Ok(decimal) => out.push_str(&decimal),
                Err(_) => return false,
            }
        }
        (_, RawValue::S(text)) => push_field(out, text),
        (_, RawValue::N(text) | RawValue::B(text)) => push_field(out, text),
        (_, RawValue::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        (ColumnKind::TextArray, RawValue::Set(_, json)) => {
            if push_json_value(out, json).is_err() {
                return false;
            }
        }
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(attribute: &str, kind: ColumnKind) -> MappedColumn {
        MappedColumn {
            name: attribute.to_owned(),
            attribute: attribute.to_owned(),
            column_type: ClickHouseKinds { bool_type: false }.column_type(kind),
            inferred: Some(kind),
        }
    }

    fn row(columns: &[MappedColumn], json: &str) -> (String, Findings) {
        let image = Image::parse(json).unwrap();
        let mut out = String::new();
        let keys = [KeyAttribute {
            name: "pk".into(),
            kind: crate::model::KeyKind::S,
        }];
        let findings = write_inferred(columns, &keys, &image, &mut out).unwrap();
        (out, findings)
    }

    #[test]
    fn values_are_written_from_the_text() {
        let columns = [
            column("d", ColumnKind::Decimal { scale: 6 }),
            column("j", ColumnKind::Json),
            column("n", ColumnKind::Int),
            column("s", ColumnKind::Text),
            column("t", ColumnKind::TextArray),
        ];
        let (out, findings) = row(
            &columns,
            r#"{"pk":{"S":"k"},"d":{"N":"1.50"},"j":{"M":{"a":{"NS":["1","2"]}}},"n":{"N":"-7"},"s":{"S":"a\tb"},"t":{"SS":["x'y"]}}"#,
        );
        assert_eq!(out, "\t1.5\t{\"a\":[1,2]}\t-7\ta\\tb\t['x\\'y']");
        assert_eq!(findings, Findings::default());
    }

    #[test]
    fn new_attributes_and_widenable_values_are_unplanned_others_untyped() {
        let columns = [column("b", ColumnKind::Bool), column("n", ColumnKind::Int)];
        let (_, findings) = row(
            &columns,
            r#"{"b":{"BOOL":true},"n":{"N":"1"},"x":{"S":"new"}}"#,
        );
        assert!(findings.unplanned, "x has no column");
        let (out, findings) = row(&columns, r#"{"b":{"N":"1"},"n":{"N":"2"}}"#);
        assert_eq!(out, "\t\\N\t2");
        assert_eq!(
            findings,
            Findings {
                untyped: 1,
                unplanned: false
            }
        );
        let (_, findings) = row(&columns, r#"{"n":{"N":"2.5"}}"#);
        assert!(findings.unplanned, "int widens to decimal");
    }
}
