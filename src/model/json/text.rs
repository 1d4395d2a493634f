//! DynamoDB JSON images validated and copied as compact text by serde,
//! without building an attribute tree (see [`crate::model::Image`]): the
//! reference path, used when the fast walk ([`super::scan`]) declines an image
//! and to name the exact place of an error.
//!
//! Accepts exactly what [`super::ItemSeed`] accepts, with the same messages:
//! one type tag per value, exact number text, strict base64, `NULL` true,
//! no attribute twice in a map. Whitespace is dropped and DynamoDB Local's
//! bare `{}` (at any depth) is written as `{"M":{}}`, so the text is one line of
//! standard DynamoDB JSON that decodes to the same item. Attribute order is
//! kept as received.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::seed::{TypeTag, TypeTagSeed};
use super::{decode_whole, JsonError};
use crate::model::{push_json_number, Number};

/// Validated DynamoDB JSON item text as plain JSON (numbers as JSON
/// numbers, sets as arrays, binary as base64 strings, NULL as null), the
/// form [`crate::model::plain_item`] gives, without building the item.
pub fn plain_json(json: &str) -> Result<String, JsonError> {
    if let Some(plain) = super::scan::scan_plain(json) {
        return Ok(plain);
    }
    let mut out = String::with_capacity(json.len());
    decode_whole(json, PlainSeed { out: &mut out })?;
    Ok(out)
}

/// Writes one item as plain JSON (see [`plain_json`]).
struct PlainSeed<'o> {
    out: &'o mut String,
}

impl<'de> DeserializeSeed<'de> for PlainSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(MapWriter {
            out: self.out,
            plain: true,
        })
    }
}

/// Deserializes one image (`NewImage`/`OldImage`): a map of attribute names
/// to DynamoDB JSON values, validated and kept as compact text.
///
/// Only for serde_json deserializers over JSON text (`from_str`,
/// `from_slice`), whose borrowed strings are raw JSON string contents.
#[derive(Clone, Copy, Default)]
pub struct ImageTextSeed;

impl<'de> DeserializeSeed<'de> for ImageTextSeed {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        let mut out = String::with_capacity(512);
        deserializer.deserialize_map(MapWriter {
            out: &mut out,
            plain: false,
        })?;
        Ok(out)
    }
}

/// Appends `text` as a JSON string. A string borrowed from serde_json's text
/// input is the exact text between its quotes (serde_json borrows only when
/// the string holds no escape, and rejects raw control characters), so it is
/// copied as is; any other string is escaped by serde_json.
#[allow(clippy::ptr_arg)] // The variant is the point: borrowed means raw JSON text.
fn push_string(out: &mut String, text: &Cow<'_, str>) {
    match text {
        Cow::Borrowed(raw) => {
            out.push('"');
            out.push_str(raw);
            out.push('"');
        }
        Cow::Owned(unescaped) => {
            // Serializing a &str cannot fail.
            if let Ok(json) = serde_json::to_string(unescaped) {
                out.push_str(&json);
            }
        }
    }
}

/// A string, borrowed from the input when it holds no escapes.
struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StrSeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Writes a map of attribute names to values; `plain` writes plain JSON
/// (see [`crate::model::plain_item`]) instead of DynamoDB JSON.
struct MapWriter<'o> {
    out: &'o mut String,
    plain: bool,
}

impl<'de> DeserializeSeed<'de> for MapWriter<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MapWriter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of attribute names to DynamoDB JSON values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut names: Vec<Cow<'de, str>> = Vec::new();
        self.out.push('{');
        while let Some(name) = map.next_key_seed(StrSeed)? {
            if names.contains(&name) {
                return Err(de::Error::custom(format_args!(
                    "attribute {name:?} appears twice"
                )));
            }
            if !names.is_empty() {
                self.out.push(',');
            }
            push_string(self.out, &name);
            self.out.push(':');
            names.push(name);
            map.next_value_seed(ValueWriter {
                out: self.out,
                plain: self.plain,
            })?;
        }
        self.out.push('}');
        Ok(())
    }
}

/// Writes one tagged value (`{"S":"x"}`, or `"x"` when `plain`); a bare
/// `{}` is an empty map.
struct ValueWriter<'o> {
    out: &'o mut String,
    plain: bool,
}

impl<'de> DeserializeSeed<'de> for ValueWriter<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ValueWriter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a DynamoDB JSON value such as {\"S\": \"text\"}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (out, plain) = (self.out, self.plain);
        let Some(tag) = map.next_key_seed(TypeTagSeed)? else {
            out.push_str(if plain { "{}" } else { r#"{"M":{}}"# });
            return Ok(());
        };
        if !plain {
            out.push_str("{\"");
            out.push_str(tag.as_str());
            out.push_str("\":");
        }
        match tag {
            TypeTag::S => push_string(out, &map.next_value_seed(StrSeed)?),
            TypeTag::N => {
                let text = map.next_value_seed(StrSeed)?;
                check(Scalar::Number, &text)?;
                push_member(out, Scalar::Number, plain, &text);
            }
            TypeTag::B => {
                let text = map.next_value_seed(StrSeed)?;
                check(Scalar::Binary, &text)?;
                push_string(out, &text);
            }
            TypeTag::Bool => out.push_str(if map.next_value()? { "true" } else { "false" }),
            TypeTag::Null => {
                if !map.next_value::<bool>()? {
                    return Err(de::Error::custom("NULL must be true"));
                }
                out.push_str(if plain { "null" } else { "true" });
            }
            TypeTag::M => map.next_value_seed(MapWriter {
                out: &mut *out,
                plain,
            })?,
            TypeTag::L => map.next_value_seed(ListWriter {
                out: &mut *out,
                plain,
            })?,
            TypeTag::Ss => map.next_value_seed(SetWriter {
                out: &mut *out,
                members: Scalar::String,
                plain,
            })?,
            TypeTag::Ns => map.next_value_seed(SetWriter {
                out: &mut *out,
                members: Scalar::Number,
                plain,
            })?,
            TypeTag::Bs => map.next_value_seed(SetWriter {
                out: &mut *out,
                members: Scalar::Binary,
                plain,
            })?,
        }
        if let Some(extra) = map.next_key_seed(TypeTagSeed)? {
            return Err(de::Error::custom(format_args!(
                "attribute value has a second type tag {extra:?}"
            )));
        }
        if !plain {
            out.push('}');
        }
        Ok(())
    }
}

/// The text forms a scalar or set member can take.
#[derive(Clone, Copy)]
enum Scalar {
    String,
    Number,
    Binary,
}

/// Appends a checked scalar: a number as a plain JSON number when `plain`,
/// anything else as a JSON string.
#[allow(clippy::ptr_arg)] // Passed on to push_string, where the variant matters.
fn push_member(out: &mut String, kind: Scalar, plain: bool, text: &Cow<'_, str>) {
    if plain && matches!(kind, Scalar::Number) {
        push_json_number(out, text);
    } else {
        push_string(out, text);
    }
}

fn check<E: de::Error>(kind: Scalar, text: &str) -> Result<(), E> {
    match kind {
        Scalar::String => Ok(()),
        Scalar::Number => Number::parse(text).map(drop).map_err(E::custom),
        Scalar::Binary => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(drop)
            .map_err(|err| E::custom(format_args!("binary value is not base64: {err}"))),
    }
}

/// Writes a list (`L`) of tagged values.
struct ListWriter<'o> {
    out: &'o mut String,
    plain: bool,
}

impl<'de> DeserializeSeed<'de> for ListWriter<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListWriter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of DynamoDB JSON values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.push('[');
        let mut first = true;
        loop {
            let mark = self.out.len();
            if !first {
                self.out.push(',');
            }
            let element = seq.next_element_seed(ValueWriter {
                out: &mut *self.out,
                plain: self.plain,
            })?;
            if element.is_none() {
                self.out.truncate(mark);
                break;
            }
            first = false;
        }
        self.out.push(']');
        Ok(())
    }
}

/// Writes a set (`SS`, `NS`, `BS`): a list of strings of one kind.
struct SetWriter<'o> {
    out: &'o mut String,
    members: Scalar,
    plain: bool,
}

impl<'de> DeserializeSeed<'de> for SetWriter<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SetWriter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.push('[');
        let mut first = true;
        while let Some(member) = seq.next_element_seed(StrSeed)? {
            check(self.members, &member)?;
            if !first {
                self.out.push(',');
            }
            push_member(self.out, self.members, self.plain, &member);
            first = false;
        }
        self.out.push(']');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::decode::{decode_image, decode_item, decode_value};
    use crate::model::{AttributeValue, Item};

    #[test]
    fn compacts_and_keeps_every_type() {
        let json = r#"{ "s" : {"S":"a \"q\" \u00e9"}, "n":{"N":"-1.50E+3"},
            "b":{"B":"AP8="}, "t":{"BOOL":true}, "z":{"NULL":true},
            "m":{"M":{"l":{"L":[{"N":"1"},{},{"SS":["x","y"]}]}}},
            "ns":{"NS":["1","2.5"]}, "bs":{"BS":["AQ=="]}, "e":{"S":""} }"#;
        let image = decode_image(json).unwrap();
        let text = image.json();
        assert!(
            !text.contains(' ') || text.contains("a \\\"q\\\""),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.contains(r#"{"M":{}}"#),
            "bare nested {{}} is tagged: {text}"
        );
        let tree = decode_item(json).unwrap();
        assert_eq!(image.item().unwrap(), &tree);
        assert_eq!(decode_item(&text).unwrap(), tree);
    }

    #[test]
    fn a_bare_empty_map_is_an_empty_map_at_any_depth() {
        let json = r#"{"top":{},"l":{"L":[{}]},"m":{"M":{"e":{}}}}"#;
        let image = decode_image(json).unwrap();
        assert_eq!(
            image.json(),
            r#"{"top":{"M":{}},"l":{"L":[{"M":{}}]},"m":{"M":{"e":{"M":{}}}}}"#
        );
        let tree = decode_item(json).unwrap();
        assert_eq!(tree["top"], AttributeValue::M(Item::new()));
        assert_eq!(image.item().unwrap(), &tree);
        assert_eq!(decode_item(&image.json()).unwrap(), tree);
        assert_eq!(decode_value("{}").unwrap(), AttributeValue::M(Item::new()));
        assert_eq!(
            image.plain_json().unwrap(),
            r#"{"top":{},"l":[{}],"m":{"e":{}}}"#
        );
    }

    #[test]
    fn rejects_what_the_item_decoder_rejects() {
        for (json, message) in [
            (r#"{"a":{"N":"x"}}"#, "not a number"),
            (r#"{"a":{"B":"%%"}}"#, "not base64"),
            (r#"{"a":{"NULL":false}}"#, "NULL must be true"),
            (r#"{"a":{"S":"x","N":"1"}}"#, "second type tag"),
            (r#"{"a":{"S":"x"},"a":{"S":"y"}}"#, "appears twice"),
            (r#"{"a":{"NS":["1","z"]}}"#, "not a number"),
            (r#"{"a":{"Q":"x"}}"#, "unknown type tag \"Q\""),
        ] {
            let err = decode_image(json).unwrap_err().to_string();
            assert!(err.contains(message), "{json}: {err}");
            assert!(decode_item(json).is_err(), "{json}");
        }
    }

    #[test]
    fn errors_name_the_path() {
        let err = decode_image(r#"{"m":{"M":{"price":{"N":"1.2.3"}}}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.M.price"), "{err}");
    }

    #[test]
    fn escapes_survive() {
        let json = r#"{"k\"ey":{"S":"line\nbreak\u0001"}}"#;
        let image = decode_image(json).unwrap();
        assert_eq!(image.item().unwrap(), &decode_item(json).unwrap());
    }
}
