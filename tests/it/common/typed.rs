//! Comparing inferred typed columns with the items they came from: both
//! sides normalised to one JSON form per column kind, so a sink's own
//! spelling (`5` or `"5"`, `1.500000`, `\x00ff` or base64) does not matter
//! but every value does.

use base64::Engine as _;
use dynamo_cdc::model::{plain_item, AttributeValue, Number};
use dynamo_cdc::schema::{ColumnKind, SinkKinds};
use serde_json::{json, Value};

fn number_text(text: &str) -> Option<String> {
    let looks_numeric = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    (looks_numeric && !text.is_empty())
        .then(|| Number::parse(text).ok())
        .flatten()
        .map(|n| n.canonical_text())
}

fn text(value: &str) -> Value {
    Value::String(number_text(value).unwrap_or_else(|| value.to_owned()))
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What a sink's column of `kind` must hold for `value`: null when the
/// attribute is missing, NULL, or a value the column cannot hold (it stays
/// in the item).
pub fn expected(sink: &dyn SinkKinds, kind: ColumnKind, value: Option<&AttributeValue>) -> Value {
    let Some(value) = value.filter(|v| sink.holds(kind, v) && **v != AttributeValue::Null) else {
        return Value::Null;
    };
    match (kind, value) {
        (ColumnKind::Json, value) => {
            let wrapped = dynamo_cdc::model::Item::from([("v".to_owned(), value.clone())]);
            let plain: Value = serde_json::from_str(&plain_item(&wrapped)).expect("plain JSON");
            plain["v"].clone()
        }
        (_, AttributeValue::N(n)) => text(n.as_str()),
        (_, AttributeValue::S(s)) => text(s),
        (ColumnKind::Bool, AttributeValue::Bool(b)) => json!(b),
        (_, AttributeValue::Bool(b)) => json!(b.to_string()),
        (_, AttributeValue::B(b)) => json!(base64(b)),
        (_, AttributeValue::Ss(items)) => sorted(items.iter().map(|s| text(s))),
        (_, AttributeValue::Ns(items)) => sorted(items.iter().map(|n| text(n.as_str()))),
        (_, AttributeValue::Bs(items)) => sorted(items.iter().map(|b| json!(base64(b)))),
        (kind, value) => panic!("a {kind} column does not hold {value:?}"),
    }
}

fn sorted(items: impl Iterator<Item = Value>) -> Value {
    let mut items: Vec<Value> = items.collect();
    items.sort_by_key(|v| v.to_string());
    Value::Array(items)
}

/// A sink's cell for a column of `kind`, in [`expected`]'s form. Binary
/// cells in PostgreSQL's `\x…` hex are read as bytes.
pub fn actual(kind: ColumnKind, cell: &Value) -> Value {
    match (kind, cell) {
        (_, Value::Null) => Value::Null,
        (ColumnKind::TextArray, Value::Array(items)) if items.is_empty() => Value::Null,
        (ColumnKind::TextArray, Value::Array(items)) => sorted(
            items
                .iter()
                .map(|v| text(v.as_str().expect("array of text"))),
        ),
        (ColumnKind::Bool, Value::Number(n)) => json!(n.as_u64() == Some(1)),
        (ColumnKind::Bool, Value::Bool(b)) => json!(b),
        (ColumnKind::Json, Value::String(s)) => serde_json::from_str(s).expect("a JSON cell"),
        (ColumnKind::Json, other) => other.clone(),
        (ColumnKind::Binary, Value::String(s)) if s.starts_with("\\x") => {
            let bytes: Vec<u8> = (2..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
                .collect();
            json!(base64(&bytes))
        }
        (_, Value::Number(n)) => text(&n.to_string()),
        (_, Value::String(s)) => text(s),
        (_, Value::Bool(b)) => json!(b.to_string()),
        (kind, other) => panic!("a {kind} column holds {other}"),
    }
}
