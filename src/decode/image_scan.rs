//! The fast path of image decoding: one walk over the JSON text that checks
//! its syntax (with [`Cursor`]) and its DynamoDB JSON structure, and copies
//! it compactly, without serde's per-token dispatch.
//!
//! It accepts a subset of what [`super::image::ImageSeed`] accepts and
//! writes the same text: whenever it meets something it does not handle
//! itself (an escape where the content matters, a structural error) it
//! returns `None`, and the caller decodes with `ImageSeed`, which either
//! accepts the input or names the error precisely.

use base64::Engine as _;

use super::json_cursor::{Cursor, Token};
use crate::model::{push_json_number, Number};

/// Checks `json` as a DynamoDB JSON item and returns it as compact text, or
/// `None` when the careful decoder must decide.
pub(super) fn scan_image(json: &str) -> Option<String> {
    let mut cursor = Cursor::new(json);
    let compact = image(&mut cursor)?;
    cursor.at_end().then_some(compact)
}

/// Reads one image at the cursor (a map of attribute names to tagged
/// values) and returns it as compact text.
pub(super) fn image(cursor: &mut Cursor<'_>) -> Option<String> {
    // The compact image is no longer than what is left of the input.
    let capacity = cursor.remaining().min(16 * 1024);
    let mut scan = Scan {
        cursor,
        out: String::with_capacity(capacity),
        names: Vec::new(),
        plain: false,
        depth: 0,
    };
    scan.map()?;
    Some(scan.out)
}

/// Writes DynamoDB JSON item text as plain JSON (see
/// [`crate::model::plain_item`]), or `None` when the careful decoder must.
pub(super) fn scan_plain(json: &str) -> Option<String> {
    let mut cursor = Cursor::new(json);
    let mut scan = Scan {
        cursor: &mut cursor,
        out: String::with_capacity(json.len()),
        names: Vec::new(),
        plain: true,
        depth: 0,
    };
    scan.map()?;
    let out = scan.out;
    cursor.at_end().then_some(out)
}

/// Attribute-name counts above which duplicates are found by sorting.
const LINEAR_NAME_CHECK: usize = 32;

/// Values nested deeper than this are left to the careful decoder. Each
/// level is at least one JSON object (two for maps and lists), so the
/// scan stays below serde_json's nesting limit of 128, which the careful
/// decoder enforces: both accept and refuse the same images, and a deeply
/// nested image cannot overflow the stack here.
const MAX_VALUE_DEPTH: usize = 48;

struct Scan<'c, 'a> {
    cursor: &'c mut Cursor<'a>,
    out: String,
    /// Names of the maps being walked (outer ones first), for duplicate checks.
    names: Vec<&'a str>,
    /// Write plain JSON (untagged values, numbers as JSON numbers, NULL as
    /// null) instead of DynamoDB JSON.
    plain: bool,
    /// Values being walked (outer ones included).
    depth: usize,
}

impl<'a> Scan<'_, 'a> {
    /// Copies a string token to the output, quotes included (its escapes
    /// were checked, so the raw text is valid JSON).
    fn push(&mut self, token: &Token<'_>) {
        self.out.push_str(token.quoted);
    }

    /// A map of attribute names to tagged values.
    fn map(&mut self) -> Option<()> {
        self.cursor.eat(b'{')?;
        self.out.push('{');
        let first_name = self.names.len();
        if !self.cursor.eat_if(b'}') {
            loop {
                let name = self.cursor.string()?;
                let plain = name.plain()?;
                if first_name < self.names.len() {
                    self.out.push(',');
                }
                self.push(&name);
                self.names.push(plain);
                self.cursor.eat(b':')?;
                self.out.push(':');
                self.value()?;
                if self.cursor.next_or_close(b'}')? {
                    break;
                }
            }
        }
        let unique = distinct(&mut self.names[first_name..]);
        self.names.truncate(first_name);
        self.out.push('}');
        unique.then_some(())
    }

    /// One tagged value, or `None` past [`MAX_VALUE_DEPTH`].
    fn value(&mut self) -> Option<()> {
        if self.depth >= MAX_VALUE_DEPTH {
            return None;
        }
        self.depth += 1;
        let value = self.tagged_value();
        self.depth -= 1;
        value
    }

    /// One tagged value (`{"S":"x"}`), or DynamoDB Local's bare `{}` (an
    /// empty map, at any depth).
    fn tagged_value(&mut self) -> Option<()> {
        self.cursor.eat(b'{')?;
        if self.cursor.eat_if(b'}') {
            let empty = if self.plain { "{}" } else { r#"{"M":{}}"# };
            self.out.push_str(empty);
            return Some(());
        }
        let tag = match self.cursor.tag_key() {
            Some(tag) => tag,
            None => {
                let tag = self.cursor.string()?.plain()?;
                self.cursor.eat(b':')?;
                tag
            }
        };
        let tag = match tag {
            "S" | "N" | "B" | "BOOL" | "NULL" | "M" | "L" | "SS" | "NS" | "BS" => tag,
            _ => return None,
        };
        if !self.plain {
            self.out.push_str("{\"");
            self.out.push_str(tag);
            self.out.push_str("\":");
        }
        match tag {
            "S" => {
                let text = self.cursor.string()?;
                self.push(&text);
            }
            "N" => self.scalar(Kind::Number)?,
            "B" => self.scalar(Kind::Binary)?,
            "BOOL" => {
                let word = if self.cursor.peek()? == b't' {
                    "true"
                } else {
                    "false"
                };
                self.cursor.literal(word)?;
                self.out.push_str(word);
            }
            "NULL" => {
                self.cursor.literal("true")?;
                self.out.push_str(if self.plain { "null" } else { "true" });
            }
            "M" => self.map()?,
            "L" => self.list()?,
            "SS" => self.set(Kind::String)?,
            "NS" => self.set(Kind::Number)?,
            _ => self.set(Kind::Binary)?,
        }
        self.cursor.eat(b'}')?;
        if !self.plain {
            self.out.push('}');
        }
        Some(())
    }

    /// A checked string scalar (number text or base64); a number is a JSON
    /// number in plain JSON.
    fn scalar(&mut self, kind: Kind) -> Option<()> {
        let token = self.cursor.string()?;
        let text = token.plain()?;
        if !kind.accepts(text) {
            return None;
        }
        if self.plain && matches!(kind, Kind::Number) {
            push_json_number(&mut self.out, text);
        } else {
            self.push(&token);
        }
        Some(())
    }

    fn list(&mut self) -> Option<()> {
        self.cursor.eat(b'[')?;
        self.out.push('[');
        if !self.cursor.eat_if(b']') {
            loop {
                self.value()?;
                if self.cursor.next_or_close(b']')? {
                    break;
                }
                self.out.push(',');
            }
        }
        self.out.push(']');
        Some(())
    }

    fn set(&mut self, kind: Kind) -> Option<()> {
        self.cursor.eat(b'[')?;
        self.out.push('[');
        if !self.cursor.eat_if(b']') {
            loop {
                match kind {
                    Kind::String => {
                        let token = self.cursor.string()?;
                        self.push(&token);
                    }
                    other => self.scalar(other)?,
                }
                if self.cursor.next_or_close(b']')? {
                    break;
                }
                self.out.push(',');
            }
        }
        self.out.push(']');
        Some(())
    }
}

#[derive(Clone, Copy)]
enum Kind {
    String,
    Number,
    Binary,
}

impl Kind {
    fn accepts(self, text: &str) -> bool {
        match self {
            Kind::String => true,
            Kind::Number => Number::parse(text).is_ok(),
            Kind::Binary => {
                let mut scratch = [0u8; 512];
                let engine = base64::engine::general_purpose::STANDARD;
                if text.len() / 4 * 3 <= scratch.len() {
                    engine.decode_slice(text, &mut scratch).is_ok()
                } else {
                    engine.decode(text).is_ok()
                }
            }
        }
    }
}

/// True when no name repeats (reorders `names` when there are many).
fn distinct(names: &mut [&str]) -> bool {
    if names.len() <= LINEAR_NAME_CHECK {
        names
            .iter()
            .enumerate()
            .all(|(i, name)| !names[..i].contains(name))
    } else {
        names.sort_unstable();
        names.windows(2).all(|pair| pair[0] != pair[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_image;

    #[test]
    fn writes_what_the_careful_decoder_writes() {
        for json in [
            r#"{}"#,
            r#"{"top":{},"l":{"L":[{}]},"m":{"M":{"e":{}}}}"#,
            r#"{ "s" : {"S":"a \"q\" é"}, "n":{"N":"-1.50E+3"},
                "b":{"B":"AP8="}, "t":{"BOOL":true}, "f":{"BOOL":false}, "z":{"NULL":true},
                "m":{"M":{"l":{"L":[{"N":"1"},{},{"SS":["x","y"]}]}}},
                "ns":{"NS":["1","2.5"]}, "bs":{"BS":["AQ==",""]}, "e":{"S":""}, "el":{"L":[]} }"#,
        ] {
            let fast = scan_image(json).expect("fast path");
            assert_eq!(fast, decode_image(json).unwrap().json(), "{json}");
        }
    }

    #[test]
    fn leaves_errors_and_escaped_content_to_the_careful_decoder() {
        for json in [
            r#"{"a":{"N":"x"}}"#,
            r#"{"a":{"B":"%%"}}"#,
            r#"{"a":{"NULL":false}}"#,
            r#"{"a":{"S":"x","N":"1"}}"#,
            r#"{"a":{"S":"x"},"a":{"S":"y"}}"#,
            r#"{"a":{"Q":"x"}}"#,
            r#"{"a":{"S":1}}"#,
            r#"{"a\u0062":{"S":"x"}}"#,
            r#"{"a":{"N":"\u0031"}}"#,
        ] {
            assert_eq!(scan_image(json), None, "{json}");
        }
    }

    #[test]
    fn plain_json_matches_the_item_form() {
        let json = r#"{"s":{"S":"a\"b"},"n":{"N":"-1.50E+3"},"z":{"NULL":true},"t":{"BOOL":false},
            "m":{"M":{"l":{"L":[{"N":".5"},{},{"SS":["x"]}]}}},"ns":{"NS":["1","+2"]},"b":{"B":"AP8="}}"#;
        let plain: serde_json::Value = serde_json::from_str(&scan_plain(json).unwrap()).unwrap();
        let item = crate::decode::decode_item(json).unwrap();
        let expected: serde_json::Value =
            serde_json::from_str(&crate::model::plain_item(&item)).unwrap();
        assert_eq!(plain, expected);
        assert_eq!(plain["m"]["l"][0], serde_json::json!(0.5));
        assert!(plain["z"].is_null());
    }

    #[test]
    fn many_names_are_checked_by_sorting() {
        let names: Vec<String> = (0..100)
            .map(|i| format!("\"a{i}\":{{\"N\":\"{i}\"}}"))
            .collect();
        let json = format!("{{{}}}", names.join(","));
        assert!(scan_image(&json).is_some());
        let twice = format!("{{{},\"a7\":{{\"S\":\"x\"}}}}", names.join(","));
        assert_eq!(scan_image(&twice), None);
    }
}
