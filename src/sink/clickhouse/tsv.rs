//! ClickHouse's TabSeparated text: escaped fields, `\N` for NULL, arrays as
//! `['a','b']`. Rows travel in this format because it is the cheapest for
//! both ends: an item's JSON goes in nearly as is (JSONEachRow would escape
//! every quote of it, and the server would undo that).

/// Appends `text` as one TabSeparated field: backslash, tab, newline,
/// carriage return and NUL escaped, everything else as is.
pub(super) fn push_field(out: &mut String, text: &str) {
    push_escaped(out, text, false);
}

/// [`push_field`], also escaping single quotes when `quoted` (a string
/// inside an array literal, which ClickHouse reads from the row as is).
fn push_escaped(out: &mut String, text: &str, quoted: bool) {
    // Most fields (an item's JSON above all) need no escape: find that out
    // with vectorized searches and copy them whole.
    let bytes = text.as_bytes();
    if !quoted
        && memchr::memchr3(b'\\', b'\t', b'\n', bytes).is_none()
        && memchr::memchr2(b'\r', 0, bytes).is_none()
    {
        out.push_str(text);
        return;
    }
    let mut plain = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'\'' if quoted => "\\'",
            b'\\' => "\\\\",
            b'\t' => "\\t",
            b'\n' => "\\n",
            b'\r' => "\\r",
            0 => "\\0",
            _ => continue,
        };
        out.push_str(&text[plain..at]);
        out.push_str(escape);
        plain = at + 1;
    }
    out.push_str(&text[plain..]);
}

/// Appends a typed column's value, given as the JSON that
/// [`super::ColumnType::write_json`] writes, as a TabSeparated field:
/// `null` → `\N`, a string → its text, an array of strings → an array
/// literal, anything else (numbers, 0/1) as is.
pub(super) fn push_json_value(out: &mut String, json: &str) -> Result<(), String> {
    match json.as_bytes().first() {
        _ if json == "null" => out.push_str("\\N"),
        Some(b'"') => {
            let text: String =
                serde_json::from_str(json).map_err(|e| format!("not a JSON string: {e}"))?;
            push_field(out, &text);
        }
        Some(b'[') => {
            let items: Vec<String> =
                serde_json::from_str(json).map_err(|e| format!("not a list of strings: {e}"))?;
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\'');
                push_escaped(out, item, true);
                out.push('\'');
            }
            out.push(']');
        }
        _ => out.push_str(json),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_escape_what_tabseparated_needs() {
        let mut out = String::new();
        push_field(&mut out, "a\tb\nc\\d\re\0f \"g\" 'h' é");
        assert_eq!(out, "a\\tb\\nc\\\\d\\re\\0f \"g\" 'h' é");
    }

    #[test]
    fn json_values_become_fields() {
        for (json, field) in [
            ("null", "\\N"),
            ("\"x\\ty\"", "x\\ty"),
            ("12.50", "12.50"),
            ("1", "1"),
            (
                r#"["a","b'c","d\\e","t\tu"]"#,
                r"['a','b\'c','d\\e','t\tu']",
            ),
            ("[]", "[]"),
        ] {
            let mut out = String::new();
            push_json_value(&mut out, json).unwrap();
            assert_eq!(out, field, "{json}");
        }
    }
}
