//! One DynamoDB Streams record (GetRecords or Lambda event shape) to a [`ChangeEvent`].

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

use super::attribute::{display_path, ItemSeed};
use super::image::ImageSeed;
use super::DecodeError;
use crate::model::{ChangeEvent, Image, Item, Op, Position, SequenceNumber};

/// The principal DynamoDB's TTL process acts as.
const TTL_PRINCIPAL: &str = "dynamodb.amazonaws.com";

#[derive(Deserialize)]
struct WireRecord<'a> {
    #[serde(rename = "eventID")]
    event_id: String,
    #[serde(rename = "eventName", borrow)]
    event_name: Cow<'a, str>,
    #[serde(borrow)]
    dynamodb: WireStreamRecord<'a>,
    #[serde(rename = "userIdentity", default, borrow)]
    user_identity: Option<WireIdentity<'a>>,
    #[serde(rename = "awsRegion", default, borrow)]
    aws_region: Option<Cow<'a, str>>,
}

/// DynamoDB Local's name for a TTL delete (its region is always `ddblocal`).
const LOCAL_TTL_EVENT: &str = "UNKNOWN_TO_SDK_VERSION";
const LOCAL_REGION: &str = "ddblocal";

#[derive(Deserialize)]
struct WireStreamRecord<'a> {
    #[serde(rename = "ApproximateCreationDateTime", default)]
    approx_seconds: Option<f64>,
    #[serde(rename = "Keys", deserialize_with = "item")]
    keys: Item,
    #[serde(rename = "NewImage", default, deserialize_with = "optional_image")]
    new_image: Option<Image>,
    #[serde(rename = "OldImage", default, deserialize_with = "optional_image")]
    old_image: Option<Image>,
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

pub(super) fn optional_image<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Image>, D::Error> {
    serde::de::DeserializeSeed::deserialize(ImageSeed, deserializer).map(Some)
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
    let wire: WireRecord = match serde_json::from_str(raw) {
        Ok(wire) => wire,
        Err(_) => return Err(explain_failure(raw)),
    };
    let fail = |path: &str, message: String| DecodeError::Record {
        event_id: wire.event_id.clone(),
        sequence: wire.dynamodb.sequence.to_string(),
        path: path.to_owned(),
        message,
    };
    let local_ttl_delete = *wire.event_name == *LOCAL_TTL_EVENT
        && wire.aws_region.as_deref() == Some(LOCAL_REGION)
        && wire.dynamodb.new_image.is_none()
        && wire.dynamodb.old_image.is_some();
    let op = match &*wire.event_name {
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
    let sequence = SequenceNumber::parse(&wire.dynamodb.sequence)
        .map_err(|err| fail("dynamodb.SequenceNumber", err.to_string()))?;
    if wire.dynamodb.keys.is_empty() {
        return Err(fail("dynamodb.Keys", "record has no key attributes".into()));
    }
    let approx_time_ms = match wire.dynamodb.approx_seconds {
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
            && wire.user_identity.as_ref().is_some_and(|identity| {
                identity.kind.as_deref() == Some("Service")
                    && identity.principal_id.as_deref() == Some(TTL_PRINCIPAL)
            });
    Ok(ChangeEvent {
        table: Arc::clone(table),
        op,
        keys: wire.dynamodb.keys,
        new_image: wire.dynamodb.new_image,
        old_image: wire.dynamodb.old_image,
        position: Position {
            shard: Arc::clone(shard),
            sequence,
        },
        approx_time_ms,
        ttl_delete,
        event_id: wire.event_id,
        size_bytes: wire.dynamodb.size_bytes,
    })
}

/// Re-reads a record that failed to decode, to say which record and where.
fn explain_failure(raw: &str) -> DecodeError {
    let mut de = serde_json::Deserializer::from_str(raw);
    let (path, message) = match serde_path_to_error::deserialize::<_, WireRecord>(&mut de) {
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
