//! The top-level attributes of an image's DynamoDB JSON text, borrowed
//! from it: what typed columns need of an item without decoding it whole
//! (no map, no value allocated but an unescaped string).

use std::borrow::Cow;

use super::decode_value;
use crate::model::json::cursor::{Cursor, Token};
use crate::model::json::scan::scan_plain;
use crate::model::{push_json_number, push_json_string, write_plain_value};

/// One top-level value, borrowed from the image's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawValue<'a> {
    /// S, unescaped.
    S(Cow<'a, str>),
    /// N, its text.
    N(&'a str),
    /// B, its base64 text.
    B(&'a str),
    /// BOOL.
    Bool(bool),
    /// NULL.
    Null,
    /// SS, NS or BS: the tag and the JSON array of strings as written.
    Set(&'a str, &'a str),
    /// M or L: the whole tagged value as written (`{"M":{…}}`), for
    /// [`super::decode_value`].
    Nested(&'a str),
}

impl RawValue<'_> {
    /// The value as plain JSON (as [`crate::model::write_plain_value`]
    /// writes it); `None` when a nested value does not decode.
    pub fn plain_json(&self) -> Option<String> {
        let mut out = String::new();
        match self {
            RawValue::S(text) => push_json_string(&mut out, text),
            RawValue::N(text) => push_json_number(&mut out, text),
            RawValue::B(text) => push_json_string(&mut out, text),
            RawValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            RawValue::Null => out.push_str("null"),
            // Strings and base64 are their own plain form.
            RawValue::Set("SS" | "BS", json) => out.push_str(json),
            RawValue::Set(tag, json) => {
                let tagged = format!("{{\"{tag}\":{json}}}");
                write_plain_value(&decode_value(&tagged).ok()?, &mut out);
            }
            RawValue::Nested(tagged) => {
                // A map's content is an item: its plain JSON comes from the
                // decoder's fast path, without building the values.
                let map = tagged
                    .strip_prefix("{\"M\":")
                    .and_then(|rest| rest.strip_suffix('}'))
                    .and_then(scan_plain);
                match map {
                    Some(plain) => return Some(plain),
                    None => write_plain_value(&decode_value(tagged).ok()?, &mut out),
                }
            }
        }
        Some(out)
    }
}

/// One top-level attribute: its name (unescaped) and value.
pub type RawAttribute<'a> = (Cow<'a, str>, RawValue<'a>);

/// An image's top-level attributes in text order, or `None` when the text
/// is not a DynamoDB JSON object this reader takes; the caller then
/// decodes the item (which either takes it or names the error).
pub fn top_level_attributes(json: &str) -> Option<Vec<RawAttribute<'_>>> {
    let mut cursor = Cursor::new(json);
    let mut attributes = Vec::with_capacity(16);
    cursor.eat(b'{')?;
    if !cursor.eat_if(b'}') {
        loop {
            let name = content(cursor.string()?)?;
            cursor.eat(b':')?;
            let start = cursor.position_of_next()?;
            cursor.eat(b'{')?;
            let tag = cursor.tag_key()?;
            let value = tagged(&mut cursor, tag)?;
            cursor.eat(b'}')?;
            let value = match value {
                RawValue::Nested(_) => RawValue::Nested(json.get(start..cursor.position())?),
                other => other,
            };
            attributes.push((name, value));
            if cursor.next_or_close(b'}')? {
                break;
            }
        }
    }
    cursor.at_end().then_some(attributes)
}

/// The value after a type tag (its key and colon already read).
fn tagged<'a>(cursor: &mut Cursor<'a>, tag: &'a str) -> Option<RawValue<'a>> {
    Some(match tag {
        "S" => RawValue::S(content(cursor.string()?)?),
        "N" => RawValue::N(cursor.string()?.plain()?),
        "B" => RawValue::B(cursor.string()?.plain()?),
        "BOOL" if cursor.literal("true").is_some() => RawValue::Bool(true),
        "BOOL" => {
            cursor.literal("false")?;
            RawValue::Bool(false)
        }
        "NULL" => {
            cursor.literal("true")?;
            RawValue::Null
        }
        "SS" | "NS" | "BS" => {
            let start = cursor.position_of_next()?;
            cursor.skip_value(2)?;
            RawValue::Set(tag, cursor_text(cursor, start)?)
        }
        "M" | "L" => {
            cursor.skip_value(2)?;
            RawValue::Nested("")
        }
        _ => return None,
    })
}

fn cursor_text<'a>(cursor: &Cursor<'a>, start: usize) -> Option<&'a str> {
    cursor.text(start..cursor.position())
}

/// A string token's content: borrowed, or unescaped when it has escapes.
fn content(token: Token<'_>) -> Option<Cow<'_, str>> {
    match token.plain() {
        Some(text) => Some(Cow::Borrowed(text)),
        None => serde_json::from_str::<String>(token.quoted)
            .ok()
            .map(Cow::Owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_type_borrowed() {
        let json = r#"{"s":{"S":"a\tb"},"n":{"N":"-1.5E3"},"b":{"B":"AAE="},"t":{"BOOL":true},
            "f":{"BOOL":false},"z":{"NULL":true},"ss":{"SS":["x","y"]},"m":{"M":{"k":{"L":[]}}},
            "l":{"L":[{"N":"1"}]},"e\u00e9":{"S":"plain"}}"#;
        let attributes = top_level_attributes(json).expect("taken");
        let get = |name: &str| {
            attributes
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("s"), Some(RawValue::S(Cow::Owned("a\tb".into()))));
        assert_eq!(get("n"), Some(RawValue::N("-1.5E3")));
        assert_eq!(get("b"), Some(RawValue::B("AAE=")));
        assert_eq!(get("t"), Some(RawValue::Bool(true)));
        assert_eq!(get("f"), Some(RawValue::Bool(false)));
        assert_eq!(get("z"), Some(RawValue::Null));
        assert_eq!(get("ss"), Some(RawValue::Set("SS", r#"["x","y"]"#)));
        assert_eq!(get("m"), Some(RawValue::Nested(r#"{"M":{"k":{"L":[]}}}"#)));
        assert_eq!(get("l"), Some(RawValue::Nested(r#"{"L":[{"N":"1"}]}"#)));
        assert_eq!(get("eé"), Some(RawValue::S(Cow::Borrowed("plain"))));
        assert_eq!(top_level_attributes("{}"), Some(Vec::new()));
    }

    #[test]
    fn plain_json_of_every_value_equals_the_models() {
        let json = r#"{"m":{"M":{"k":{"L":[{"N":"1.50"},{"SS":["a"]}]},"b":{"B":"AAE="}}},
            "l":{"L":[{"NULL":true},{"BOOL":false}]},"ns":{"NS":["1","2.5"]},"s":{"S":"q\"x"}}"#;
        let whole: serde_json::Value = serde_json::from_str(json).unwrap();
        for (name, raw) in top_level_attributes(json).unwrap() {
            let decoded = decode_value(&whole[name.as_ref()].to_string()).unwrap();
            let mut expected = String::new();
            write_plain_value(&decoded, &mut expected);
            let plain = raw.plain_json().expect("plain JSON");
            // Equal as JSON (a map's keys keep their text order).
            let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
            assert_eq!(parse(&plain), parse(&expected), "{name}");
        }
    }

    #[test]
    fn leaves_what_it_does_not_take_to_the_decoder() {
        for json in [
            r#"{"a":{"X":"1"}}"#,
            r#"{"a":{"N":"1"},}"#,
            r#"{"a":{"S":"1"}} x"#,
            r#"{"a":{"BOOL":"true"}}"#,
            r#"["a"]"#,
        ] {
            assert_eq!(top_level_attributes(json), None, "{json}");
        }
    }
}
