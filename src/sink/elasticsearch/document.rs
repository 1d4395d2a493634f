//! One change as a bulk action: the document `_id` from the item's key, the
//! index from the template, and the document (plain JSON of the new image,
//! numbers by [`NumberStyle`], with optional metadata).
//!
//! **Ids.** Each key attribute in key order (partition key first): a string
//! as its UTF-8 bytes, a number as its canonical text, a binary as
//! unpadded base64url. Bytes outside `A–Z a–z 0–9 - . _` are written `~XX`
//! (hex), and the parts of a composite key are joined by `~~`, so ids use
//! only URL-unreserved characters, and two different keys never share an
//! id. Elasticsearch limits ids to 512 bytes; a longer one is refused.

use base64::Engine as _;

use super::numbers::{restyle_numbers, NumberStyle};
use crate::model::{json_number, AttributeValue, ChangeEvent, Item, KeyAttribute};

/// Longest `_id` Elasticsearch accepts, in bytes.
pub const MAX_ID_BYTES: usize = 512;

/// Why a change has no document id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentIdError {
    /// A key attribute is missing from the change's keys.
    #[error("the change has no key attribute {0:?}")]
    MissingKey(String),
    /// A key attribute has a type keys cannot have.
    #[error("key attribute {0:?} is not a string, number or binary")]
    KeyType(String),
    /// The id is longer than Elasticsearch accepts.
    #[error("the document id would be {0} bytes, above Elasticsearch's {MAX_ID_BYTES}")]
    TooLong(usize),
}

/// The `_id` of the item whose key attributes are `keys`.
pub fn document_id(schema_keys: &[KeyAttribute], keys: &Item) -> Result<String, DocumentIdError> {
    let mut id = String::new();
    for (index, key) in schema_keys.iter().enumerate() {
        if index > 0 {
            id.push_str("~~");
        }
        let value = keys
            .get(&key.name)
            .ok_or_else(|| DocumentIdError::MissingKey(key.name.clone()))?;
        push_key_part(&mut id, value).ok_or_else(|| DocumentIdError::KeyType(key.name.clone()))?;
    }
    if id.len() > MAX_ID_BYTES {
        return Err(DocumentIdError::TooLong(id.len()));
    }
    Ok(id)
}

/// Appends one key attribute's part of an id; `None` for a non-key type.
pub fn push_key_part(id: &mut String, value: &AttributeValue) -> Option<()> {
    match value {
        AttributeValue::S(text) => push_escaped(id, text.as_bytes()),
        AttributeValue::N(number) => push_escaped(id, json_number(number).as_bytes()),
        AttributeValue::B(bytes) => {
            id.push_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
        }
        _ => return None,
    }
    Some(())
}

fn push_escaped(id: &mut String, bytes: &[u8]) {
    for byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_') {
            id.push(char::from(*byte));
        } else {
            id.push_str(&format!("~{byte:02X}"));
        }
    }
}

/// The index of a table: the template with `{table}` replaced by the table
/// name in lower case (index names cannot hold upper case).
pub fn index_name(template: &str, table: &str) -> String {
    template.replace("{table}", &table.to_lowercase())
}

/// What the document carries besides the item.
#[derive(Debug, Clone)]
pub struct DocumentStyle {
    /// How numbers are written.
    pub numbers: NumberStyle,
    /// Name of the metadata object (op, table, shard, sequence, time); none when unset.
    pub metadata_field: Option<String>,
    /// Name of the boolean that marks tombstones in `soft_delete` mode.
    pub deleted_field: String,
}

/// The document for an insert, modify or snapshot read: the new image.
pub fn upsert_document(
    event: &ChangeEvent,
    es_version: i64,
    style: &DocumentStyle,
) -> Result<String, String> {
    let image = event.new_image.as_ref().ok_or(
        "the change carries no new image (the stream's view type must include new images)",
    )?;
    let plain = image
        .plain_json()
        .map_err(|err| format!("the new image cannot be read: {err}"))?;
    Ok(finish_document(plain, event, es_version, style))
}

/// The document of `plain` (the item as plain JSON, its fields already
/// named): numbers by the style, and the metadata when configured.
pub fn finish_document(
    plain: String,
    event: &ChangeEvent,
    es_version: i64,
    style: &DocumentStyle,
) -> String {
    let mut document = restyle_numbers(plain, style.numbers);
    if let Some(field) = &style.metadata_field {
        push_field(&mut document, field, &metadata(event, es_version));
    }
    document
}

/// The tombstone of `soft_delete` mode: the key attributes (`plain_keys`,
/// as plain JSON with their fields named), the deleted marker and the
/// metadata.
pub fn tombstone_document(
    plain_keys: String,
    event: &ChangeEvent,
    es_version: i64,
    style: &DocumentStyle,
) -> String {
    let mut document = restyle_numbers(plain_keys, style.numbers);
    push_field(&mut document, &style.deleted_field, "true");
    if let Some(field) = &style.metadata_field {
        push_field(&mut document, field, &metadata(event, es_version));
    }
    document
}

/// Adds `"name":value` to the JSON object `document`.
fn push_field(document: &mut String, name: &str, value: &str) {
    if !document.ends_with('}') {
        return;
    }
    document.pop();
    if !document.ends_with('{') {
        document.push(',');
    }
    document.push_str(&serde_json::Value::from(name).to_string());
    document.push(':');
    document.push_str(value);
    document.push('}');
}

/// The metadata object; `es_version` (the document's version as a number)
/// is what the end-of-snapshot sweep queries.
fn metadata(event: &ChangeEvent, es_version: i64) -> String {
    serde_json::json!({
        "es_version": es_version,
        "op": event.op.as_str(),
        "table": &*event.table,
        "shard": &*event.position.shard,
        "sequence": event.position.sequence.as_str(),
        "version": event.version().digits(),
        "approx_time_ms": event.approx_time_ms,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{KeyKind, Number, TableSchema};

    fn keys(schema: &TableSchema, values: &[AttributeValue]) -> Item {
        schema
            .keys
            .iter()
            .zip(values)
            .map(|(k, v)| (k.name.clone(), v.clone()))
            .collect()
    }

    #[test]
    fn ids_are_url_safe_and_unambiguous() {
        let simple = TableSchema::new("t", &[("pk", KeyKind::S)]);
        let composite = TableSchema::new("t", &[("pk", KeyKind::S), ("sk", KeyKind::N)]);
        let id = |schema: &TableSchema, values: &[AttributeValue]| {
            document_id(&schema.keys, &keys(schema, values)).unwrap()
        };
        let s = |t: &str| AttributeValue::S(t.into());
        let n = |t: &str| AttributeValue::N(Number::parse(t).unwrap());
        assert_eq!(id(&simple, &[s("user-42")]), "user-42");
        assert_eq!(id(&simple, &[s("a/b c#~")]), "a~2Fb~20c~23~7E");
        assert_eq!(id(&simple, &[s("é")]), "~C3~A9");
        assert_eq!(id(&composite, &[s("a"), n("1E+3")]), "a~~1E~2B3");
        // The separator cannot come from a value: "a~~b" as one string differs.
        assert_ne!(id(&composite, &[s("a"), n("7")]), id(&simple, &[s("a~~7")]));
        let binary = TableSchema::new("t", &[("pk", KeyKind::B)]);
        assert_eq!(id(&binary, &[AttributeValue::B(vec![0xfb, 0xff])]), "-_8");
        let long = "x".repeat(600);
        assert!(document_id(&simple.keys, &keys(&simple, &[s(&long)])).is_err());
        assert!(document_id(&composite.keys, &keys(&simple, &[s("a")])).is_err());
    }

    #[test]
    fn index_names_come_from_the_template_in_lower_case() {
        assert_eq!(index_name("ddb-{table}", "Orders"), "ddb-orders");
        assert_eq!(index_name("fixed", "Orders"), "fixed");
    }

    #[test]
    fn fields_join_the_object() {
        let mut empty = "{}".to_owned();
        push_field(&mut empty, "deleted", "true");
        assert_eq!(empty, r#"{"deleted":true}"#);
        let mut doc = r#"{"a":1}"#.to_owned();
        push_field(&mut doc, "m", r#"{"op":"insert"}"#);
        assert_eq!(doc, r#"{"a":1,"m":{"op":"insert"}}"#);
    }
}
