//! Column names for attribute names, deterministic and reversible.
//!
//! A *plain* attribute name — an ASCII letter, then letters, digits and
//! single underscores, at most 63 bytes, and not a name the sink reserves —
//! is its own column name. Any other name is escaped: `__` and then the
//! name with every byte outside `[A-Za-z0-9]` written as `_` and two
//! uppercase hex digits (`first name` → `__first_20name`, `_v` → `___5Fv`).
//! Plain names never start with `_` nor hold `__`, so the two forms never
//! meet, and suffixes such as `price__s` never meet either. An escaped name
//! longer than 63 bytes (PostgreSQL's limit) is cut and ends in `_h` and a
//! hash of the whole name; only the schema history maps that one back.

use crate::hash::fnv1a;

/// The longest column name (PostgreSQL's identifier limit in bytes).
pub const MAX_COLUMN_NAME: usize = 63;

/// The column name of `attribute`, given the names the sink reserves.
pub fn column_name(attribute: &str, reserved: impl Fn(&str) -> bool) -> String {
    if is_plain(attribute) && !reserved(attribute) {
        return attribute.to_owned();
    }
    let mut escaped = String::from("__");
    for byte in attribute.bytes() {
        if byte.is_ascii_alphanumeric() {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("_{byte:02X}"));
        }
    }
    if escaped.len() <= MAX_COLUMN_NAME {
        return escaped;
    }
    let hash = format!("_h{:016x}", fnv1a(attribute.as_bytes()));
    let mut cut = MAX_COLUMN_NAME - hash.len();
    // Never end inside an escape (`_4`): the name stays readable.
    while escaped.as_bytes()[..cut].ends_with(b"_") || ends_in_half_escape(&escaped[..cut]) {
        cut -= 1;
    }
    format!("{}{hash}", &escaped[..cut])
}

/// The attribute a column name was made from; `None` for a name that is
/// not one [`column_name`] makes, or a cut one (see the module notes).
pub fn attribute_name(column: &str) -> Option<String> {
    let Some(escaped) = column.strip_prefix("__") else {
        return is_plain(column).then(|| column.to_owned());
    };
    let mut bytes = Vec::with_capacity(escaped.len());
    let mut rest = escaped.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first != b'_' {
            bytes.push(first);
            rest = tail;
            continue;
        }
        let hex = tail.get(..2)?;
        let text = std::str::from_utf8(hex).ok()?;
        if text.bytes().any(|b| b.is_ascii_lowercase()) {
            return None;
        }
        bytes.push(u8::from_str_radix(text, 16).ok()?);
        rest = &tail[2..];
    }
    String::from_utf8(bytes).ok()
}

fn is_plain(name: &str) -> bool {
    name.len() <= MAX_COLUMN_NAME
        && name.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.contains("__")
}

fn ends_in_half_escape(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 2 && bytes[bytes.len() - 2] == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> bool {
        false
    }

    #[test]
    fn plain_names_are_kept() {
        for name in ["price", "order_id", "Total2", "a_b_c"] {
            assert_eq!(column_name(name, none), name);
            assert_eq!(attribute_name(name).as_deref(), Some(name));
        }
    }

    #[test]
    fn other_names_are_escaped_and_come_back() {
        let cases = [
            ("first name", "__first_20name"),
            ("_version", "___5Fversion"),
            ("a__b", "__a_5F_5Fb"),
            ("1st", "__1st"),
            ("prix-€", "__prix_2D_E2_82_AC"),
            ("", "__"),
        ];
        for (attribute, column) in cases {
            assert_eq!(column_name(attribute, none), column, "{attribute:?}");
            assert_eq!(attribute_name(column).as_deref(), Some(attribute));
        }
    }

    #[test]
    fn reserved_names_are_escaped() {
        let reserved = |name: &str| name == "item";
        assert_eq!(column_name("item", reserved), "__item");
        assert_eq!(attribute_name("__item").as_deref(), Some("item"));
        assert_eq!(column_name("items", reserved), "items");
    }

    #[test]
    fn long_names_are_cut_with_a_hash_and_stay_distinct() {
        let long_a = format!("{} a", "x".repeat(80));
        let long_b = format!("{} b", "x".repeat(80));
        let a = column_name(&long_a, none);
        let b = column_name(&long_b, none);
        assert!(a.len() <= MAX_COLUMN_NAME && b.len() <= MAX_COLUMN_NAME);
        assert_ne!(a, b);
        assert_eq!(attribute_name(&a), None);
        let plain_long = "y".repeat(70);
        assert!(column_name(&plain_long, none).len() <= MAX_COLUMN_NAME);
    }

    #[test]
    fn suffixed_and_foreign_names_are_not_attributes() {
        assert_eq!(attribute_name("price__s"), None);
        assert_eq!(attribute_name("_item"), None);
        assert_eq!(attribute_name("__bad_zz"), None);
    }
}
