//! A change event line as the `jsonl` and `s3` sinks write it, back to a [`ChangeEvent`].

use std::sync::Arc;

use serde::Deserialize;

use super::image_field::{absent, CarefulImage, FastImage, ImageField};
use super::record::item;
use super::DecodeError;
use crate::model::{ChangeEvent, Item, Op, Position, SequenceNumber};

/// A change event line; `I` reads the images ([`FastImage`] first,
/// [`CarefulImage`] to explain a failure).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent<I> {
    table: String,
    op: Op,
    #[serde(deserialize_with = "item")]
    keys: Item,
    #[serde(default = "absent")]
    new_image: Option<I>,
    #[serde(default = "absent")]
    old_image: Option<I>,
    position: WirePosition,
    #[serde(default)]
    approx_time_ms: Option<i64>,
    #[serde(default)]
    ttl_delete: bool,
    #[serde(default)]
    event_id: String,
    #[serde(default)]
    size_bytes: u64,
    /// Present when the version is not the position's sequence number
    /// (Kinesis changes, whose versions come from their creation time).
    #[serde(default)]
    version: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WirePosition {
    shard: String,
    sequence: String,
}

/// Decodes one JSON Lines change event.
pub fn decode_event_line(line: &str) -> Result<ChangeEvent, DecodeError> {
    let wire: WireEvent<FastImage> = match serde_json::from_str(line) {
        Ok(wire) => wire,
        Err(_) => return Err(explain_failure(line)),
    };
    let sequence =
        SequenceNumber::parse(&wire.position.sequence).map_err(|err| DecodeError::Value {
            path: "position.sequence".into(),
            message: err.to_string(),
        })?;
    let version = match &wire.version {
        Some(text) => SequenceNumber::parse(text).map_err(|err| DecodeError::Value {
            path: "version".into(),
            message: err.to_string(),
        })?,
        None => sequence.clone(),
    };
    Ok(ChangeEvent {
        table: Arc::from(wire.table.as_str()),
        op: wire.op,
        keys: wire.keys,
        new_image: wire.new_image.map(ImageField::into_image),
        old_image: wire.old_image.map(ImageField::into_image),
        position: Position {
            shard: Arc::from(wire.position.shard.as_str()),
            sequence,
        },
        version,
        approx_time_ms: wire.approx_time_ms,
        ttl_delete: wire.ttl_delete,
        event_id: wire.event_id,
        size_bytes: wire.size_bytes,
    })
}

/// Re-reads a line that failed to decode, tracking the path, to say where.
fn explain_failure(line: &str) -> DecodeError {
    let mut de = serde_json::Deserializer::from_str(line);
    let mut track = serde_path_to_error::Track::new();
    let result: Result<WireEvent<CarefulImage>, _> = serde::Deserialize::deserialize(
        serde_path_to_error::Deserializer::new(&mut de, &mut track),
    );
    DecodeError::Value {
        path: crate::model::json::display_path(&track.path()),
        message: match result {
            Ok(_) => "line decodes only on a second try".to_owned(),
            Err(err) => err.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttributeValue, Number};

    #[test]
    fn round_trips_the_sink_format() {
        let event = ChangeEvent {
            table: Arc::from("orders"),
            op: Op::Modify,
            keys: Item::from([("pk".to_owned(), AttributeValue::S("a".into()))]),
            new_image: Some(
                Item::from([(
                    "n".to_owned(),
                    AttributeValue::N(
                        Number::parse("12345678901234567890123456789012345678").unwrap(),
                    ),
                )])
                .into(),
            ),
            old_image: None,
            position: Position {
                shard: Arc::from("shardId-1"),
                sequence: SequenceNumber::parse("000000000000000000042").unwrap(),
            },
            version: SequenceNumber::parse("000000000000000000042").unwrap(),
            approx_time_ms: Some(1),
            ttl_delete: false,
            event_id: "e".into(),
            size_bytes: 9,
        };
        let line = serde_json::to_string(&event).unwrap();
        let back = decode_event_line(&line).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.position.sequence.as_str(), "000000000000000000042");
    }

    #[test]
    fn bad_lines_name_the_field() {
        let err = decode_event_line(r#"{"table":"t","op":"upsert"}"#).unwrap_err();
        assert!(err.to_string().contains("op"), "{err}");
    }
}
