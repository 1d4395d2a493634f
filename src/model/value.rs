//! DynamoDB attribute values, kept exactly as DynamoDB holds them.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// An item: attribute names to values, in name order.
pub type Item = BTreeMap<String, AttributeValue>;

/// One DynamoDB attribute value.
///
/// Serializes as DynamoDB JSON (`{"N":"1.5"}`, binary as standard base64), the
/// only JSON form that keeps every type apart. Set members keep the order in
/// which they were received; [`AttributeValue::canonical`] sorts them for
/// comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// String (`S`); may be empty.
    S(String),
    /// Number (`N`), exact decimal text.
    N(Number),
    /// Binary (`B`).
    B(Vec<u8>),
    /// Boolean (`BOOL`).
    Bool(bool),
    /// Null (`NULL`).
    Null,
    /// Map (`M`).
    M(Item),
    /// List (`L`).
    L(Vec<AttributeValue>),
    /// String set (`SS`).
    Ss(Vec<String>),
    /// Number set (`NS`).
    Ns(Vec<Number>),
    /// Binary set (`BS`).
    Bs(Vec<Vec<u8>>),
}

impl AttributeValue {
    /// The DynamoDB type tag (`S`, `N`, `B`, `BOOL`, `NULL`, `M`, `L`, `SS`, `NS`, `BS`).
    pub fn type_tag(&self) -> &'static str {
        match self {
            Self::S(_) => "S",
            Self::N(_) => "N",
            Self::B(_) => "B",
            Self::Bool(_) => "BOOL",
            Self::Null => "NULL",
            Self::M(_) => "M",
            Self::L(_) => "L",
            Self::Ss(_) => "SS",
            Self::Ns(_) => "NS",
            Self::Bs(_) => "BS",
        }
    }

    /// The same value with every set's members sorted (recursively), so that
    /// two values holding equal sets compare equal whatever their order.
    pub fn canonical(&self) -> Self {
        match self {
            Self::M(map) => Self::M(canonical_item(map)),
            Self::L(list) => Self::L(list.iter().map(Self::canonical).collect()),
            Self::Ss(set) => {
                let mut set = set.clone();
                set.sort();
                Self::Ss(set)
            }
            Self::Ns(set) => {
                let mut set = set.clone();
                set.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                Self::Ns(set)
            }
            Self::Bs(set) => {
                let mut set = set.clone();
                set.sort();
                Self::Bs(set)
            }
            other => other.clone(),
        }
    }
}

/// [`AttributeValue::canonical`] applied to every value of an item.
pub fn canonical_item(item: &Item) -> Item {
    item.iter()
        .map(|(name, value)| (name.clone(), value.canonical()))
        .collect()
}

/// A DynamoDB number: the exact decimal text, never converted to a float.
///
/// Accepts an optional sign, digits with an optional fraction and an optional
/// exponent (`-12.5`, `1E+3`); the text is kept as given.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Number(Box<str>);

/// Why a text is not a DynamoDB number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a number: {reason}")]
pub struct NumberError {
    /// The rejected text.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Number {
    /// Validates and wraps number text.
    pub fn parse(text: &str) -> Result<Self, NumberError> {
        validate_number(text).map_err(|reason| NumberError {
            text: text.to_owned(),
            reason,
        })?;
        Ok(Self(text.into()))
    }

    /// The exact decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate_number(text: &str) -> Result<(), &'static str> {
    let bytes = text.as_bytes();
    let mut i = 0;
    if matches!(bytes.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return Err("no digits");
    }
    if i < bytes.len() && matches!(bytes[i], b'e' | b'E') {
        i += 1;
        if i < bytes.len() && matches!(bytes[i], b'-' | b'+') {
            i += 1;
        }
        let exp_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return Err("exponent without digits");
        }
    }
    if i != bytes.len() {
        return Err("unexpected character");
    }
    Ok(())
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({})", self.0)
    }
}

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Serializes bytes as standard base64 text.
struct Base64<'a>(&'a [u8]);

impl Serialize for Base64<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(self.0))
    }
}

/// Serializes a binary set as a list of base64 strings.
struct Base64Set<'a>(&'a [Vec<u8>]);

impl Serialize for Base64Set<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for bytes in self.0 {
            seq.serialize_element(&Base64(bytes))?;
        }
        seq.end()
    }
}

impl Serialize for AttributeValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        let tag = self.type_tag();
        match self {
            Self::S(s) => map.serialize_entry(tag, s)?,
            Self::N(n) => map.serialize_entry(tag, n)?,
            Self::B(b) => map.serialize_entry(tag, &Base64(b))?,
            Self::Bool(b) => map.serialize_entry(tag, b)?,
            Self::Null => map.serialize_entry(tag, &true)?,
            Self::M(m) => map.serialize_entry(tag, m)?,
            Self::L(l) => map.serialize_entry(tag, l)?,
            Self::Ss(s) => map.serialize_entry(tag, s)?,
            Self::Ns(n) => map.serialize_entry(tag, n)?,
            Self::Bs(b) => map.serialize_entry(tag, &Base64Set(b))?,
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_text() {
        for text in [
            "0",
            "-12.50",
            "12345678901234567890123456789012345678",
            "1E+3",
            "1.5e-130",
            ".5",
        ] {
            assert_eq!(Number::parse(text).unwrap().as_str(), text);
        }
    }

    #[test]
    fn rejects_non_numbers() {
        for text in [
            "", "-", "1.2.3", "1e", "abc", "1 ", "NaN", "Infinity", "0x10",
        ] {
            assert!(Number::parse(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn serializes_as_dynamodb_json() {
        let mut item = Item::new();
        item.insert("s".into(), AttributeValue::S(String::new()));
        item.insert("b".into(), AttributeValue::B(vec![0, 255]));
        item.insert("n".into(), AttributeValue::Null);
        item.insert(
            "m".into(),
            AttributeValue::M(Item::from([(
                "l".to_owned(),
                AttributeValue::L(vec![AttributeValue::M(Item::new())]),
            )])),
        );
        let json = serde_json::to_string(&item).unwrap();
        assert_eq!(
            json,
            r#"{"b":{"B":"AP8="},"m":{"M":{"l":{"L":[{"M":{}}]}}},"n":{"NULL":true},"s":{"S":""}}"#
        );
    }

    #[test]
    fn canonical_sorts_sets() {
        let a = AttributeValue::Ss(vec!["b".into(), "a".into()]);
        let b = AttributeValue::Ss(vec!["a".into(), "b".into()]);
        assert_ne!(a, b);
        assert_eq!(a.canonical(), b.canonical());
    }
}
