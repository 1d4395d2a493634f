//! Pattern JSON read exactly as written: numbers keep their text (a 38-digit
//! bound is not rounded through a float) and an object keeps repeated keys,
//! which AWS Lambda's documented patterns use to AND two conditions under
//! one name (`{"dynamodb":{"NewImage":…},"dynamodb":{"OldImage":…}}`).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON value as the pattern compiler reads it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Json {
    Null,
    Bool(bool),
    /// The number's text, exactly as written.
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// Entries in the order written, repeated keys included.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses JSON text. Errors are serde_json's (with line and column).
    pub(super) fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let raw: &RawValue = serde_json::from_str(text)?;
        Self::from_raw(raw)
    }

    /// Reads one already-validated value, descending through its raw parts.
    fn from_raw(raw: &RawValue) -> Result<Self, serde_json::Error> {
        let text = raw.get().trim();
        Ok(match text.as_bytes().first() {
            Some(b'{') => {
                let Entries(entries) = serde_json::from_str(text)?;
                let entries = entries
                    .into_iter()
                    .map(|(key, value)| Ok((key, Self::from_raw(value)?)))
                    .collect::<Result<_, serde_json::Error>>()?;
                Json::Object(entries)
            }
            Some(b'[') => {
                let items: Vec<&RawValue> = serde_json::from_str(text)?;
                let items = items
                    .into_iter()
                    .map(Self::from_raw)
                    .collect::<Result<_, _>>()?;
                Json::Array(items)
            }
            Some(b'"') => Json::String(serde_json::from_str(text)?),
            Some(b't') => Json::Bool(true),
            Some(b'f') => Json::Bool(false),
            Some(b'n') => Json::Null,
            _ => Json::Number(text.to_owned()),
        })
    }

    /// Converts a parsed `serde_json` value. Its numbers are only as exact as
    /// `serde_json` kept them, and its objects cannot repeat keys.
    pub(super) fn from_value(value: &serde_json::Value) -> Self {
        use serde_json::Value;
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.to_string()),
            Value::String(s) => Json::String(s.clone()),
            Value::Array(items) => Json::Array(items.iter().map(Self::from_value).collect()),
            Value::Object(map) => Json::Object(
                map.iter()
                    .map(|(key, value)| (key.clone(), Self::from_value(value)))
                    .collect(),
            ),
        }
    }

    /// What kind of value this is, for error messages ("a string").
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// An object's entries in order, values left raw.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

struct EntriesVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for EntriesVisitor<'a> {
    type Value = Entries<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, &'a RawValue>()? {
            entries.push(entry);
        }
        Ok(Entries(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_number_text_and_repeated_keys() {
        let json = Json::parse(
            r#" {"a": [12345678901234567890123456789012345678, -1.50e+3], "a": {"b": null}} "#,
        )
        .unwrap();
        let expected = Json::Object(vec![
            (
                "a".into(),
                Json::Array(vec![
                    Json::Number("12345678901234567890123456789012345678".into()),
                    Json::Number("-1.50e+3".into()),
                ]),
            ),
            ("a".into(), Json::Object(vec![("b".into(), Json::Null)])),
        ]);
        assert_eq!(json, expected);
    }

    #[test]
    fn reads_escaped_strings_and_literals() {
        let json = Json::parse(r#"["a\"b\u00e9", true, false, null, {}]"#).unwrap();
        let expected = Json::Array(vec![
            Json::String("a\"bé".into()),
            Json::Bool(true),
            Json::Bool(false),
            Json::Null,
            Json::Object(vec![]),
        ]);
        assert_eq!(json, expected);
    }

    #[test]
    fn rejects_invalid_json() {
        for text in ["", "{", r#"{"a": }"#, "[1,]", "{} {}"] {
            assert!(Json::parse(text).is_err(), "{text:?}");
        }
    }
}
