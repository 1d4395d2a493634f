//! One DynamoDB Streams record (GetRecords or Lambda event shape) to a [`ChangeEvent`].

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

use super::image_field::{absent, CarefulImage, FastImage, ImageField};
use super::DecodeError;
use crate::model::json::{display_path, ItemSeed};
use crate::model::{ChangeEvent, Image, Item, Op, Position, SequenceNumber, VERSION_DIGITS};

/// The principal DynamoDB's TTL process acts as.
pub(super) const TTL_PRINCIPAL: &str = "dynamodb.amazonaws.com";

/// A stream record as sent; `I` reads the images ([`FastImage`] first,
/// [`CarefulImage`] to explain a failure).
#[derive(Deserialize)]
struct WireRecord<'a, I> {
    #[serde(rename = "eventID")]
    event_id: String,
    #[serde(rename = "eventName", borrow)]
    event_name: Cow<'a, str>,
    #[serde(borrow)]
    dynamodb: WireStreamRecord<'a, I>,
    #[serde(rename = "userIdentity", default, borrow)]
    user_identity: Option<WireIdentity<'a>>,
    #[serde(rename = "awsRegion", default, borrow)]
    aws_region: Option<Cow<'a, str>>,
}

/// DynamoDB Local's name for a TTL delete (its region is always `ddblocal`).
const LOCAL_TTL_EVENT: &str = "UNKNOWN_TO_SDK_VERSION";
const LOCAL_REGION: &str = "ddblocal";

#[derive(Deserialize)]
struct WireStreamRecord<'a, I> {
    #[serde(rename = "ApproximateCreationDateTime", default)]
    approx_seconds: Option<f64>,
    #[serde(rename = "Keys", deserialize_with = "item")]
    keys: Item,
    #[serde(rename = "NewImage", default = "absent")]
    new_image: Option<I>,
    #[serde(rename = "OldImage", default = "absent")]
    old_image: Option<I>,
    #[serde(rename = "SequenceNumber", borrow)]
    sequence: Cow<'a, str>,
    #[serde(rename = "SizeBytes", default)]
    size_bytes: u64,
}

/// `userIdentity`: `PrincipalId`/`Type` in GetRecords, `principalId`/`type` in Lambda events.
#[derive(Deserialize)]
struct WireIdentity<'a> {
    #[serde(rename = "PrincipalId", alias = "principalId", default, borrow)]
    principal_id: Option<Cow<'a, str>>,
    #[serde(rename = "Type", alias = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
}

pub(super) fn item<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Item, D::Error> {
    serde::de::DeserializeSeed::deserialize(ItemSeed, deserializer)
}

/// Decodes one raw stream record of `table` read from `shard`.
///
/// Errors name the record (event id and sequence number when readable), the
/// path of the offending field and what is wrong with it.
pub fn decode_record(
    raw: &str,
    table: &Arc<str>,
    shard: &Arc<str>,
) -> Result<ChangeEvent, DecodeError> {
    // The fast path reads well-formed, escape-free records in one walk; the
    // serde path below decides everything else (and names errors).
    if let Some(parts) = super::record_scan::scan_record(raw) {
        return parts.finish(table, shard);
    }
    decode_record_careful(raw, table, shard)
}

/// [`decode_record`] with serde alone (images through the fast image path,
/// errors re-read with paths tracked).
pub(super) fn decode_record_careful(
    raw: &str,
    table: &Arc<str>,
    shard: &Arc<str>,
) -> Result<ChangeEvent, DecodeError> {
    let wire: WireRecord<FastImage> = match serde_json::from_str(raw) {
        Ok(wire) => wire,
        Err(_) => return Err(explain_failure(raw)),
    };
    let identity = wire.user_identity.as_ref();
    Parts {
        event_id: wire.event_id,
        event_name: &wire.event_name,
        aws_region: wire.aws_region.as_deref(),
        identity_type: identity.and_then(|i| i.kind.as_deref()),
        identity_principal: identity.and_then(|i| i.principal_id.as_deref()),
        approx_seconds: wire.dynamodb.approx_seconds,
        keys: wire.dynamodb.keys,
        new_image: wire.dynamodb.new_image.map(ImageField::into_image),
        old_image: wire.dynamodb.old_image.map(ImageField::into_image),
        sequence: &wire.dynamodb.sequence,
        size_bytes: wire.dynamodb.size_bytes,
        version: None,
    }
    .finish(table, shard)
}

/// The fields of a stream record the engine uses, however they were read.
pub(super) struct Parts<'a> {
    pub(super) event_id: String,
    pub(super) event_name: &'a str,
    pub(super) aws_region: Option<&'a str>,
    pub(super) identity_type: Option<&'a str>,
    pub(super) identity_principal: Option<&'a str>,
    pub(super) approx_seconds: Option<f64>,
    pub(super) keys: Item,
    pub(super) new_image: Option<Image>,
    pub(super) old_image: Option<Image>,
    pub(super) sequence: &'a str,
    pub(super) size_bytes: u64,
    /// The version when it is not the sequence number (Kinesis records).
    pub(super) version: Option<SequenceNumber>,
}

impl Parts<'_> {
    /// Checks the fields' meaning and builds the change.
    pub(super) fn finish(
        self,
        table: &Arc<str>,
        shard: &Arc<str>,
    ) -> Result<ChangeEvent, DecodeError> {
        let fail = |path: &str, message: String| DecodeError::Record {
            event_id: self.event_id.clone(),
            sequence: self.sequence.to_owned(),
            path: path.to_owned(),
            message,
        };
        let local_ttl_delete = self.event_name == LOCAL_TTL_EVENT
            && self.aws_region == Some(LOCAL_REGION)
            && self.new_image.is_none()
            && self.old_image.is_some();
        let op = match self.event_name {
            "INSERT" => Op::Insert,
            "MODIFY" => Op::Modify,
            "REMOVE" => Op::Remove,
            _ if local_ttl_delete => Op::Remove,
            other => {
                return Err(fail(
                    "eventName",
                    format!("unknown event name {other:?} (expected INSERT, MODIFY or REMOVE)"),
                ))
            }
        };
        let sequence = SequenceNumber::parse(self.sequence)
            .map_err(|err| fail("dynamodb.SequenceNumber", err.to_string()))?;
        if self.version.is_none() && !sequence.fits_version() {
            return Err(fail(
                "dynamodb.SequenceNumber",
                format!(
                    "{} digits: a DynamoDB Streams sequence number has at most {VERSION_DIGITS}",
                    sequence.digits().len()
                ),
            ));
        }
        if self.keys.is_empty() {
            return Err(fail("dynamodb.Keys", "record has no key attributes".into()));
        }
        let approx_time_ms = match self.approx_seconds {
            Some(seconds) if seconds.is_finite() => Some((seconds * 1000.0).round() as i64),
            Some(_) => {
                return Err(fail(
                    "dynamodb.ApproximateCreationDateTime",
                    "not a finite number".into(),
                ))
            }
            None => None,
        };
        let ttl_delete = local_ttl_delete
            || op == Op::Remove
                && self.identity_type == Some("Service")
                && self.identity_principal == Some(TTL_PRINCIPAL);
        Ok(ChangeEvent {
            table: Arc::clone(table),
            op,
            keys: self.keys,
            new_image: self.new_image,
            old_image: self.old_image,
            position: Position {
                shard: Arc::clone(shard),
                sequence: sequence.clone(),
            },
            version: self.version.unwrap_or(sequence),
            approx_time_ms,
            ttl_delete,
            event_id: self.event_id,
            size_bytes: self.size_bytes,
        })
    }
}

/// Re-reads a record that failed to decode, to say which record and where.
fn explain_failure(raw: &str) -> DecodeError {
    let mut de = serde_json::Deserializer::from_str(raw);
    let (path, message) =
        match serde_path_to_error::deserialize::<_, WireRecord<CarefulImage>>(&mut de) {
            Ok(_) => (
                ".".to_owned(),
                "record decodes only on a second try".to_owned(),
            ),
            Err(err) => (display_path(err.path()), err.inner().to_string()),
        };
    let loose: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
    let text_at = |pointer: &str| {
        loose
            .pointer(pointer)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    DecodeError::Record {
        event_id: text_at("/eventID"),
        sequence: text_at("/dynamodb/SequenceNumber"),
        path,
        message,
    }
}
