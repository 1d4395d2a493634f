//! Inferred typed columns of a PostgreSQL target table: each value travels
//! as a text parameter (like every other column of the sink) and is cast
//! in SQL, so numbers never pass through a float.

use std::borrow::Cow;

use base64::Engine as _;

use super::kinds::PostgresKinds;
use super::sql::quote;
use crate::decode::{top_level_attributes, RawValue};
use crate::model::{write_plain_value, AttributeValue, Item, KeyKind};
use crate::schema::raw::{raw_holds, raw_widened};
use crate::schema::{ColumnKind, SinkKinds};

/// One text parameter of a row: NULL, or text borrowed from the change
/// when it can be (keys, the image's DynamoDB JSON) and owned otherwise.
pub type Param<'a> = Option<Cow<'a, str>>;

/// One inferred column of a target table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgColumn {
    /// Column name.
    pub name: String,
    /// Top-level attribute it holds.
    pub attribute: String,
    /// Its kind.
    pub kind: ColumnKind,
}

/// `text` (a text expression) cast to the column type of `kind`.
pub fn cast(kind: ColumnKind, text: &str) -> String {
    match kind {
        ColumnKind::Bool => format!("{text}::boolean"),
        ColumnKind::Int => format!("{text}::bigint"),
        ColumnKind::Decimal { .. } => format!("{text}::numeric"),
        ColumnKind::Text => text.to_owned(),
        ColumnKind::Binary => format!("decode({text}, 'base64')"),
        ColumnKind::TextArray => format!(
            "CASE WHEN {text} IS NULL THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text({text}::jsonb)) END"
        ),
        ColumnKind::Json => format!("{text}::jsonb"),
    }
}

/// What building one row's typed parameters found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Findings {
    /// Values that fit no column the sink can make: NULL there, kept in
    /// the item columns.
    pub untyped: u32,
    /// A value (keys aside) needs a new column, or a wider one PostgreSQL
    /// can make: the batch's columns must change before it is written.
    pub unplanned: bool,
}

/// The text parameter of each column for `item` (all NULL without one,
/// as for a tombstone), and what they found; `keys` are the table's key
/// attributes (columns of their own).
pub fn params(
    columns: &[PgColumn],
    keys: &[(String, KeyKind)],
    item: Option<&Item>,
    out: &mut Vec<Param<'_>>,
) -> Findings {
    let mut findings = Findings::default();
    for column in columns {
        let value = item.and_then(|item| item.get(&column.attribute));
        let param = match value {
            None | Some(AttributeValue::Null) => None,
            Some(value) if PostgresKinds.holds(column.kind, value) => {
                Some(Cow::Owned(text(column.kind, value)))
            }
            Some(value) => {
                let wanted = PostgresKinds.widened(column.kind, value);
                if PostgresKinds.can_widen(column.kind, wanted) {
                    findings.unplanned = true;
                } else {
                    findings.untyped += 1;
                }
                None
            }
        };
        out.push(param);
    }
    let unknown = item.is_some_and(|item| {
        item.iter().any(|(name, value)| {
            *value != AttributeValue::Null
                && !keys.iter().any(|(k, _)| k == name)
                && !columns.iter().any(|c| c.attribute == *name)
        })
    });
    findings.unplanned |= unknown;
    findings
}

/// [`params`] from the image's text without decoding it; `None` when the
/// text is not one the in-place reader takes (nothing is appended then).
pub fn params_from_text(
    columns: &[PgColumn],
    keys: &[(String, KeyKind)],
    text: &str,
    out: &mut Vec<Param<'_>>,
) -> Option<Findings> {
    let attributes = top_level_attributes(text)?;
    let mut params = Vec::with_capacity(columns.len());
    let mut findings = Findings::default();
    let mut found = 0;
    for column in columns {
        let value = attributes
            .iter()
            .find(|(name, _)| *name == column.attribute)
            .map(|(_, value)| value);
        params.push(match value {
            None | Some(RawValue::Null) => None,
            Some(value) if holds_raw(column.kind, value) => {
                found += 1;
                Some(Cow::Owned(raw_text(column.kind, value)?))
            }
            Some(value) => {
                found += 1;
                if PostgresKinds.can_widen(column.kind, raw_widened(column.kind, value)) {
                    findings.unplanned = true;
                } else {
                    findings.untyped += 1;
                }
                None
            }
        });
    }
    let with_values = attributes
        .iter()
        .filter(|(name, value)| *value != RawValue::Null && !keys.iter().any(|(k, _)| k == name))
        .count();
    findings.unplanned |= found < with_values;
    out.append(&mut params);
    Some(findings)
}

/// [`PostgresKinds`]' `holds` for a value still in the text: `numeric`
/// holds every number.
fn holds_raw(kind: ColumnKind, value: &RawValue<'_>) -> bool {
    matches!((kind, value), (ColumnKind::Decimal { .. }, RawValue::N(_))) || raw_holds(kind, value)
}

/// [`text`] of a value still in the image's text.
fn raw_text(kind: ColumnKind, value: &RawValue<'_>) -> Option<String> {
    Some(match (kind, value) {
        (ColumnKind::Json, value) => value.plain_json()?,
        (_, RawValue::S(s)) => s.clone().into_owned(),
        (_, RawValue::N(text) | RawValue::B(text)) => (*text).to_owned(),
        (_, RawValue::Bool(b)) => b.to_string(),
        (_, RawValue::Set(_, json)) => (*json).to_owned(),
        (_, value) => value.plain_json()?,
    })
}

/// The text of `value` for a column of `kind` that holds it.
fn text(kind: ColumnKind, value: &AttributeValue) -> String {
    let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    match (kind, value) {
        (ColumnKind::Json, value) => plain(value),
        (_, AttributeValue::S(s)) => s.clone(),
        (_, AttributeValue::N(n)) => n.as_str().to_owned(),
        (_, AttributeValue::Bool(b)) => b.to_string(),
        (_, AttributeValue::B(b)) => base64(b),
        (_, AttributeValue::Ss(items)) => json_array(items.iter().cloned()),
        (_, AttributeValue::Ns(items)) => json_array(items.iter().map(|n| n.as_str().to_owned())),
        (_, AttributeValue::Bs(items)) => json_array(items.iter().map(|b| base64(b))),
        (_, value) => plain(value),
    }
}

fn plain(value: &AttributeValue) -> String {
    let mut out = String::new();
    write_plain_value(value, &mut out);
    out
}

fn json_array(items: impl Iterator<Item = String>) -> String {
    serde_json::Value::Array(items.map(serde_json::Value::String).collect()).to_string()
}

/// `, "a", "b"`: the columns' names for an INSERT's column list.
pub fn names(columns: &[PgColumn]) -> String {
    columns
        .iter()
        .map(|c| format!(", {}", quote(&c.name)))
        .collect()
}

/// `,\n    "a" = EXCLUDED."a"`…: the columns of an upsert's SET list.
pub fn assignments(columns: &[PgColumn]) -> String {
    columns
        .iter()
        .map(|c| format!(",\n    {0} = EXCLUDED.{0}", quote(&c.name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Number;

    fn column(attribute: &str, kind: ColumnKind) -> PgColumn {
        PgColumn {
            name: attribute.to_owned(),
            attribute: attribute.to_owned(),
            kind,
        }
    }

    #[test]
    fn values_become_text_parameters_or_null_when_they_do_not_fit() {
        let columns = [
            column("qty", ColumnKind::Int),
            column("price", ColumnKind::Decimal { scale: 6 }),
            column("tags", ColumnKind::TextArray),
            column("doc", ColumnKind::Json),
            column("gone", ColumnKind::Text),
        ];
        let n = |t: &str| AttributeValue::N(Number::parse(t).unwrap());
        let item = Item::from([
            ("qty".to_owned(), n("1.5")),
            ("price".to_owned(), n("1E-130")),
            ("tags".to_owned(), AttributeValue::Ss(vec!["a\"".into()])),
            ("doc".to_owned(), AttributeValue::L(vec![n("2")])),
        ]);
        let mut out = Vec::new();
        let findings = params(&columns, &[], Some(&item), &mut out);
        assert!(findings.unplanned, "1.5 is no bigint: the column widens");
        assert_eq!(findings.untyped, 0);
        assert_eq!(
            out,
            vec![
                None,
                Some("1E-130".into()),
                Some(r#"["a\""]"#.into()),
                Some("[2]".into()),
                None
            ]
        );
        out.clear();
        assert_eq!(params(&columns, &[], None, &mut out), Findings::default());
        assert!(out.iter().all(Option::is_none));
        assert!(cast(ColumnKind::TextArray, "$3").contains("jsonb_array_elements_text($3::jsonb)"));
    }

    #[test]
    fn parameters_from_the_text_equal_those_from_the_item() {
        let columns = [
            column("qty", ColumnKind::Int),
            column("price", ColumnKind::Decimal { scale: 6 }),
            column("tags", ColumnKind::TextArray),
            column("doc", ColumnKind::Json),
            column("name", ColumnKind::Text),
            column("gone", ColumnKind::Text),
        ];
        let text = r#"{"pk":{"S":"k"},"qty":{"N":"1.5"},"price":{"N":"1E-130"},"tags":{"NS":["1","2"]},
            "doc":{"L":[{"N":"2"},{"SS":["a"]}]},"name":{"S":"a\"b"}}"#;
        let item = crate::decode::decode_item(text).unwrap();
        let keys = [("pk".to_owned(), KeyKind::S)];
        let (mut from_item, mut from_text) = (Vec::new(), Vec::new());
        let findings = params(&columns, &keys, Some(&item), &mut from_item);
        assert!(findings.unplanned, "1.5 needs numeric");
        let by_text = params_from_text(&columns, &keys, text, &mut from_text);
        assert_eq!(by_text, Some(findings));
        assert_eq!(from_text, from_item);
        let unplanned = |json: &str| {
            let item = crate::decode::decode_item(json).unwrap();
            let decoded = params(&columns, &keys, Some(&item), &mut Vec::new()).unplanned;
            let raw = params_from_text(&columns, &keys, json, &mut Vec::new()).map(|f| f.unplanned);
            assert_eq!(raw, Some(decoded), "{json}");
            decoded
        };
        assert!(!unplanned(
            r#"{"pk":{"S":"k"},"qty":{"N":"2"},"name":{"S":"x"}}"#
        ));
        assert!(
            unplanned(r#"{"pk":{"S":"k"},"other":{"BOOL":true}}"#),
            "a new attribute"
        );
        assert!(
            !unplanned(r#"{"pk":{"S":"k"},"tags":{"S":"x"}}"#),
            "text[] never widens"
        );
    }
}
