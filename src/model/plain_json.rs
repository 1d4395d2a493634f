//! Items as plain JSON, for SQL databases and search engines: numbers as
//! JSON numbers with every digit kept, sets as arrays, binary as base64.
//! (DynamoDB JSON stays the lossless form; plain JSON drops the S/SS/L and
//! B/S distinctions.)

use std::fmt::Write as _;

use base64::Engine as _;

use super::{AttributeValue, Item, Number};

/// Appends `item` as a plain JSON object.
pub fn write_plain_item(item: &Item, out: &mut String) {
    out.push('{');
    for (i, (name, value)) in item.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, name);
        out.push(':');
        write_plain_value(value, out);
    }
    out.push('}');
}

/// `item` as a plain JSON object.
pub fn plain_item(item: &Item) -> String {
    let mut out = String::new();
    write_plain_item(item, &mut out);
    out
}

/// Appends `text` as a JSON string (quotes, backslashes and control
/// characters escaped), straight into `out`.
pub fn push_json_string(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    let mut plain = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[plain..at]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        plain = at + 1;
    }
    out.push_str(&text[plain..]);
    out.push('"');
}

fn push_array<T>(out: &mut String, items: &[T], mut each: impl FnMut(&T, &mut String)) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(item, out);
    }
    out.push(']');
}

/// Appends one value as plain JSON.
pub fn write_plain_value(value: &AttributeValue, out: &mut String) {
    let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    match value {
        AttributeValue::S(s) => push_json_string(out, s),
        AttributeValue::N(n) => out.push_str(&json_number(n)),
        AttributeValue::B(b) => push_json_string(out, &base64(b)),
        AttributeValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AttributeValue::Null => out.push_str("null"),
        AttributeValue::M(m) => write_plain_item(m, out),
        AttributeValue::L(l) => push_array(out, l, write_plain_value),
        AttributeValue::Ss(s) => push_array(out, s, |s, out| push_json_string(out, s)),
        AttributeValue::Ns(n) => push_array(out, n, |n, out| out.push_str(&json_number(n))),
        AttributeValue::Bs(b) => push_array(out, b, |b, out| push_json_string(out, &base64(b))),
    }
}

/// A DynamoDB number as a JSON number with the same value and digits
/// (`+1` → `1`, `.5` → `0.5`, `007` → `7`, `5.` → `5`).
pub fn json_number(number: &Number) -> String {
    json_number_text(number.as_str())
}

/// [`json_number`] of number text that [`Number::parse`] accepts.
pub fn json_number_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_json_number(&mut out, text);
    out
}

/// Appends [`json_number_text`] of `text` to `out` (no allocation of its own).
pub fn push_json_number(out: &mut String, text: &str) {
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'-') => ("-", &text[1..]),
        Some(b'+') => ("", &text[1..]),
        _ => ("", text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let int = int.trim_start_matches('0');
    out.push_str(sign);
    out.push_str(if int.is_empty() { "0" } else { int });
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out.push_str(exponent);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Number {
        Number::parse(text).unwrap()
    }

    #[test]
    fn numbers_become_valid_json_with_every_digit() {
        for (text, json) in [
            (
                "12345678901234567890123456789012345678",
                "12345678901234567890123456789012345678",
            ),
            ("-0.5", "-0.5"),
            (".5", "0.5"),
            ("+1", "1"),
            ("0100", "100"),
            ("1.50", "1.50"),
            ("5.", "5"),
            ("1E+3", "1E+3"),
        ] {
            let out = json_number(&n(text));
            assert_eq!(out, json, "{text}");
            assert!(
                serde_json::from_str::<serde_json::Value>(&out).is_ok(),
                "{out}"
            );
        }
    }

    #[test]
    fn items_become_plain_json() {
        let item = Item::from([
            ("b".to_owned(), AttributeValue::B(vec![0, 255])),
            (
                "m".to_owned(),
                AttributeValue::M(Item::from([("n".to_owned(), AttributeValue::N(n("1")))])),
            ),
            ("ns".to_owned(), AttributeValue::Ns(vec![n("1"), n("2.5")])),
            ("s".to_owned(), AttributeValue::S("\"q\"".into())),
            ("z".to_owned(), AttributeValue::Null),
        ]);
        assert_eq!(
            plain_item(&item),
            r#"{"b":"AP8=","m":{"n":1},"ns":[1,2.5],"s":"\"q\"","z":null}"#
        );
    }
}
