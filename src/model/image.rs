//! An item image (`NewImage`/`OldImage`) kept as validated DynamoDB JSON text,
//! decoded into an [`Item`] only when something needs its attributes.
//!
//! Most sinks re-emit images as DynamoDB JSON (JSON Lines, S3, SQLite's
//! `_item`, ClickHouse's `_item`); building an attribute tree only to
//! serialize it again was the largest cost of the hot path. The text is
//! checked as strictly as a decoded item would be ([`super::json`]), so an
//! image is as trustworthy as a decoded item; transforms and typed columns
//! decode it on first use.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use serde::{Serialize, Serializer};

use super::json::{decode_item, validate_image, JsonError};
use super::Item;

/// An item image: compact DynamoDB JSON, its decoded attributes on demand.
///
/// Two images are equal when their decoded items are equal (attribute order
/// in the text does not matter).
#[derive(Clone)]
pub struct Image {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// Validated, compact (single-line) DynamoDB JSON; decoded once on demand.
    Json {
        text: Box<str>,
        item: OnceLock<Item>,
    },
    /// Built from attributes (snapshots, transforms, tests).
    Item(Item),
}

impl Image {
    /// Wraps DynamoDB JSON that was validated and compacted ([`super::json::validate_image`], or the record decoders
    /// that call its parts). Other callers use [`Image::parse`].
    pub(crate) fn from_validated_json(text: String) -> Self {
        Self {
            repr: Repr::Json {
                text: text.into_boxed_str(),
                item: OnceLock::new(),
            },
        }
    }

    /// Validates DynamoDB JSON text (`{"name":{"S":"x"}}`) as an image.
    pub fn parse(json: &str) -> Result<Self, JsonError> {
        validate_image(json).map(Self::from_validated_json)
    }

    /// The decoded attributes. Decodes the text on first use; fails only if
    /// the text the decoder accepted does not decode (a decoder bug), and
    /// says where.
    pub fn item(&self) -> Result<&Item, JsonError> {
        match &self.repr {
            Repr::Item(item) => Ok(item),
            Repr::Json { text, item } => {
                if let Some(item) = item.get() {
                    return Ok(item);
                }
                let decoded = decode_item(text)?;
                Ok(item.get_or_init(|| decoded))
            }
        }
    }

    /// The attributes for editing; the text form is dropped (it is rebuilt
    /// from the attributes when next needed).
    pub fn item_mut(&mut self) -> Result<&mut Item, JsonError> {
        if let Repr::Json { text, item } = &mut self.repr {
            let decoded = match item.take() {
                Some(decoded) => decoded,
                None => decode_item(text)?,
            };
            self.repr = Repr::Item(decoded);
        }
        match &mut self.repr {
            Repr::Item(item) => Ok(item),
            Repr::Json { .. } => unreachable!("converted above"),
        }
    }

    /// The image as one line of DynamoDB JSON, without re-encoding when it
    /// was read as text.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match &self.repr {
            Repr::Json { text, .. } => out.extend_from_slice(text.as_bytes()),
            // Serializing an item into memory cannot fail: every key is a string.
            Repr::Item(item) => {
                let _ = serde_json::to_writer(out, item);
            }
        }
    }

    /// The image as plain JSON (see [`super::plain_item`]); an image read as
    /// text is transcoded without building its attributes.
    pub fn plain_json(&self) -> Result<String, JsonError> {
        match &self.repr {
            Repr::Json { text, .. } => super::json::plain_json(text),
            Repr::Item(item) => Ok(super::plain_item(item)),
        }
    }

    /// The image as one line of DynamoDB JSON, borrowed when it was read as text.
    pub fn json_text(&self) -> Cow<'_, str> {
        match &self.repr {
            Repr::Json { text, .. } => Cow::Borrowed(text),
            // Serializing an item into memory cannot fail: every key is a string.
            Repr::Item(item) => Cow::Owned(serde_json::to_string(item).unwrap_or_default()),
        }
    }

    /// The image as one line of DynamoDB JSON.
    pub fn json(&self) -> String {
        self.json_text().into_owned()
    }
}

impl From<Item> for Image {
    fn from(item: Item) -> Self {
        Self {
            repr: Repr::Item(item),
        }
    }
}

impl PartialEq for Image {
    fn eq(&self, other: &Self) -> bool {
        match (self.item(), other.item()) {
            (Ok(a), Ok(b)) => a == b,
            _ => self.json() == other.json(),
        }
    }
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Json { text, .. } => write!(f, "Image({text})"),
            Repr::Item(item) => write!(f, "Image({item:?})"),
        }
    }
}

impl Serialize for Image {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.item()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}
