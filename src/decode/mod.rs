//! Lossless decoding of DynamoDB JSON and DynamoDB Streams records into the model.
//!
//! Numbers stay decimal text, binary is base64-decoded, sets keep their
//! members, NULL and empty strings survive. Unknown or malformed attribute
//! shapes are errors, never coerced, with one documented exception: DynamoDB
//! Local writes an empty map as a bare `{}` (real DynamoDB always tags it
//! `{"M":{}}`), at the top level of an item as well as inside a list or map,
//! so a bare `{}` is read as an empty map at any depth. It is unambiguous: a
//! tagged value always has exactly one key.
//! Likewise DynamoDB Local names a TTL delete `UNKNOWN_TO_SDK_VERSION` (with
//! region `ddblocal`, an old image and no new image): exactly that shape is
//! read as a TTL remove; any other unknown event name is an error.

mod event_line;
mod image_field;
pub mod kinesis;
mod page;
mod record;
mod record_kind;
mod record_scan;
mod top_level;

pub use event_line::decode_event_line;
pub use page::{parse_page, RecordsPage};
pub use record::decode_record;
pub use record_kind::{
    kinesis_format_record, record_keys, KinesisFormatRecord, RecordDecoder, RecordFormat,
    RejectReason, RejectedRecord,
};
pub use top_level::{top_level_attributes, RawAttribute, RawValue};

use crate::model::json::{self, JsonError};
use crate::model::{AttributeValue, Image, Item};

/// Why input could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The response body is not a GetRecords page.
    #[error("not a GetRecords response: {0}")]
    Page(String),
    /// One stream record is malformed.
    #[error("record {event_id} (sequence {sequence}): {message} at {path}")]
    Record {
        /// The record's `eventID`, or `?` when it could not be read.
        event_id: String,
        /// The record's sequence number, or `?` when it could not be read.
        sequence: String,
        /// Where in the record the problem is (`dynamodb.NewImage.price`).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A DynamoDB JSON value or item is malformed.
    #[error("invalid DynamoDB JSON at {path}: {message}")]
    Value {
        /// Where in the value the problem is.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl From<JsonError> for DecodeError {
    fn from(error: JsonError) -> Self {
        Self::Value {
            path: error.path,
            message: error.message,
        }
    }
}

/// Decodes one DynamoDB JSON item as an [`Image`]: validated, compact text
/// ([`Image::parse`], with this module's error).
pub fn decode_image(json: &str) -> Result<Image, DecodeError> {
    Ok(Image::parse(json)?)
}

/// Decodes one DynamoDB JSON item (`{"name": {"S": "x"}, …}`).
pub fn decode_item(json: &str) -> Result<Item, DecodeError> {
    Ok(json::decode_item(json)?)
}

/// Decodes one top-level DynamoDB JSON value (`{"S": "x"}`).
pub fn decode_value(json: &str) -> Result<AttributeValue, DecodeError> {
    Ok(json::decode_value(json)?)
}
