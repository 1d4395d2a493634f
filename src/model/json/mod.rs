//! The model's text form, DynamoDB JSON (`{"name":{"S":"x"}}`), read
//! strictly: items and values decoded, images validated and kept as
//! compact text, and images transcoded to plain JSON.
//!
//! Two readers agree on what they accept: a hand-written walk
//! ([`scan`], over the token reader [`cursor`]) for the common shapes, and
//! serde seeds ([`seed`], [`text`]) that accept the rest and name the exact
//! place of an error. Numbers stay decimal text, binary is strict base64,
//! NULL is `true`, and no attribute appears twice in a map. DynamoDB
//! Local's bare `{}` (an empty map, at any depth) is read as `{"M":{}}`.
//! Stream records and pages, which embed this format, are read by
//! [`crate::decode`].

pub(crate) mod cursor;
pub(crate) mod scan;
mod seed;
mod string_scan;
mod text;

pub use seed::ItemSeed;
pub use text::{plain_json, ImageTextSeed};

use serde::de::DeserializeSeed;

use super::{AttributeValue, Item};

/// Text that is not valid DynamoDB JSON, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid DynamoDB JSON at {path}: {message}")]
pub struct JsonError {
    /// Where in the text the problem is (`.price`, `.` for the root).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Validates one DynamoDB JSON item and returns it as compact text (one
/// line, bare `{}` written as `{"M":{}}`, attribute order kept).
pub fn validate_image(json: &str) -> Result<String, JsonError> {
    match scan::scan_image(json) {
        Some(compact) => Ok(compact),
        None => decode_whole(json, ImageTextSeed),
    }
}

/// Decodes one DynamoDB JSON item (`{"name": {"S": "x"}, …}`).
pub fn decode_item(json: &str) -> Result<Item, JsonError> {
    decode_whole(json, ItemSeed)
}

/// Decodes one top-level DynamoDB JSON value (`{"S": "x"}`).
pub fn decode_value(json: &str) -> Result<AttributeValue, JsonError> {
    decode_whole(json, seed::ValueSeed)
}

/// Runs `seed` over the whole of `json` (nothing may follow the value),
/// naming the path of the first problem.
pub(crate) fn decode_whole<'de, T: DeserializeSeed<'de>>(
    json: &'de str,
    seed: T,
) -> Result<T::Value, JsonError> {
    let mut de = serde_json::Deserializer::from_str(json);
    let mut track = serde_path_to_error::Track::new();
    let value = seed
        .deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track))
        .map_err(|err| JsonError {
            path: display_path(&track.path()),
            message: err.to_string(),
        })?;
    de.end().map_err(|err| JsonError {
        path: ".".to_owned(),
        message: err.to_string(),
    })?;
    Ok(value)
}

/// Renders a serde path, `.` for the root.
pub(crate) fn display_path(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text.is_empty() {
        ".".to_owned()
    } else {
        text
    }
}
