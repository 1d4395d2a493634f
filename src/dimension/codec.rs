//! The byte forms of a dimension row: its key (the text of each key part;
//! a composite key length-prefixes every part, so no text can be mistaken
//! for another split) and its cells (a tag byte, then for strings and
//! numbers a LEB128 length and the UTF-8 text). Both index kinds store
//! these bytes, so a row is encoded once while the file is read.

use crate::model::{AttributeValue, Number};

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const STRING: u8 = 3;
const NUMBER: u8 = 4;

/// One cell of a dimension row, borrowed from its encoded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell<'a> {
    /// NULL (an empty or missing value).
    Null,
    /// A boolean.
    Bool(bool),
    /// A string.
    S(&'a str),
    /// A number's exact decimal text.
    N(&'a str),
}

impl Cell<'_> {
    /// The cell as a DynamoDB attribute value (`NULL`, `BOOL`, `S`, `N`).
    pub fn to_value(self) -> AttributeValue {
        match self {
            Self::Null => AttributeValue::Null,
            Self::Bool(b) => AttributeValue::Bool(b),
            Self::S(s) => AttributeValue::S(s.to_owned()),
            // Numbers were validated when the row was encoded.
            Self::N(n) => {
                Number::parse(n).map_or_else(|_| AttributeValue::S(n.to_owned()), AttributeValue::N)
            }
        }
    }

    /// Appends the cell's encoding to `out`.
    pub fn encode(self, out: &mut Vec<u8>) {
        match self {
            Self::Null => out.push(NULL),
            Self::Bool(false) => out.push(FALSE),
            Self::Bool(true) => out.push(TRUE),
            Self::S(text) => encode_text(STRING, text, out),
            Self::N(text) => encode_text(NUMBER, text, out),
        }
    }
}

fn encode_text(tag: u8, text: &str, out: &mut Vec<u8>) {
    out.push(tag);
    push_length(text.len(), out);
    out.extend_from_slice(text.as_bytes());
}

fn push_length(mut length: usize, out: &mut Vec<u8>) {
    while length >= 0x80 {
        // Truncation keeps the low seven bits, which is the point.
        out.push((length as u8) | 0x80);
        length >>= 7;
    }
    out.push(length as u8);
}

fn read_length(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut length = 0usize;
    for (index, byte) in bytes.iter().enumerate().take(10) {
        length |= usize::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((length, &bytes[index + 1..]));
        }
    }
    None
}

/// The cells of an encoded row, in column order. A malformed row (only a
/// corrupt index file can hold one) ends the iteration early.
#[derive(Debug, Clone)]
pub struct Cells<'a> {
    rest: &'a [u8],
}

impl<'a> Cells<'a> {
    /// Iterates the cells of `row`.
    pub fn new(row: &'a [u8]) -> Self {
        Self { rest: row }
    }
}

impl<'a> Iterator for Cells<'a> {
    type Item = Cell<'a>;

    fn next(&mut self) -> Option<Cell<'a>> {
        let (&tag, rest) = self.rest.split_first()?;
        let (cell, rest) = match tag {
            NULL => (Cell::Null, rest),
            FALSE => (Cell::Bool(false), rest),
            TRUE => (Cell::Bool(true), rest),
            STRING | NUMBER => {
                let (length, rest) = read_length(rest)?;
                let text = std::str::from_utf8(rest.get(..length)?).ok()?;
                let cell = if tag == STRING {
                    Cell::S(text)
                } else {
                    Cell::N(text)
                };
                (cell, &rest[length..])
            }
            _ => return None,
        };
        self.rest = rest;
        Some(cell)
    }
}

/// Builds the key of a row or of a lookup from its parts' texts.
#[derive(Debug, Clone, Default)]
pub struct KeyBuilder {
    bytes: Vec<u8>,
    parts: usize,
    composite: bool,
}

impl KeyBuilder {
    /// A builder for keys of `parts` parts (one part is stored as its bare text).
    pub fn new(parts: usize) -> Self {
        Self {
            bytes: Vec::new(),
            parts: 0,
            composite: parts > 1,
        }
    }

    /// Starts a new key.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.parts = 0;
    }

    /// Adds the next part's text.
    pub fn push(&mut self, text: &str) {
        if self.composite {
            push_length(text.len(), &mut self.bytes);
        }
        self.bytes.extend_from_slice(text.as_bytes());
        self.parts += 1;
    }

    /// The key's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// A key's parts for messages: texts joined with `/` (composite keys
/// decoded from their length prefixes).
pub fn key_display(key: &[u8], parts: usize) -> String {
    if parts <= 1 {
        return String::from_utf8_lossy(key).into_owned();
    }
    let mut texts = Vec::with_capacity(parts);
    let mut rest = key;
    while let Some((length, tail)) = read_length(rest) {
        let Some(text) = tail.get(..length) else {
            break;
        };
        texts.push(String::from_utf8_lossy(text).into_owned());
        rest = &tail[length..];
        if rest.is_empty() {
            break;
        }
    }
    texts.join("/")
}

/// The text a key part takes from an attribute value: strings and numbers
/// join; any other type never matches a row.
pub fn key_text(value: &AttributeValue) -> Option<&str> {
    match value {
        AttributeValue::S(s) => Some(s),
        AttributeValue::N(n) => Some(n.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip() {
        let long = "x".repeat(300);
        let cells = [
            Cell::Null,
            Cell::Bool(true),
            Cell::Bool(false),
            Cell::S(""),
            Cell::S(&long),
            Cell::N("-12.500"),
            Cell::S("naïve"),
        ];
        let mut row = Vec::new();
        for cell in cells {
            cell.encode(&mut row);
        }
        assert_eq!(Cells::new(&row).collect::<Vec<_>>(), cells);
        assert_eq!(
            Cell::N("12345678901234567890123456789012345678").to_value(),
            AttributeValue::N(Number::parse("12345678901234567890123456789012345678").unwrap())
        );
    }

    #[test]
    fn a_truncated_row_ends_early() {
        let mut row = Vec::new();
        Cell::S("abc").encode(&mut row);
        Cell::S("defgh").encode(&mut row);
        row.truncate(row.len() - 2);
        assert_eq!(Cells::new(&row).collect::<Vec<_>>(), [Cell::S("abc")]);
    }

    #[test]
    fn composite_keys_cannot_be_confused() {
        let mut a = KeyBuilder::new(2);
        a.push("ab");
        a.push("c");
        let mut b = KeyBuilder::new(2);
        b.push("a");
        b.push("bc");
        assert_ne!(a.bytes(), b.bytes());
        assert_eq!(key_display(a.bytes(), 2), "ab/c");
        let mut single = KeyBuilder::new(1);
        single.push("c42");
        assert_eq!(single.bytes(), b"c42");
        single.clear();
        single.push("c7");
        assert_eq!(key_display(single.bytes(), 1), "c7");
    }
}
