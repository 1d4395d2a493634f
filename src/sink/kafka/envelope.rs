//! A change as a Kafka record: the key (the item's key attributes as
//! canonical JSON) and the value in one of three envelopes. Images keep
//! every digit of their numbers in every envelope.

use serde::Deserialize;

use crate::model::{plain_item, ChangeEvent, Image, Op};

/// The shape of record values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Envelope {
    /// Debezium's change event: `before`, `after`, `op` (c/u/d/r),
    /// `source` and `ts_ms`, images as plain JSON.
    #[default]
    Debezium,
    /// The stream record as AWS delivers it to Lambda and Kinesis
    /// (`eventID`, `eventName`, `dynamodb` with `Keys`, `NewImage`,
    /// `OldImage`, `SequenceNumber`, …), images as DynamoDB JSON.
    Dynamodb,
    /// The new image as plain JSON; a delete has no value (a tombstone).
    Plain,
}

/// The record key: the key attributes as a plain JSON object with sorted
/// names, the same bytes for every change of an item.
pub fn record_key(event: &ChangeEvent) -> String {
    plain_item(&event.keys)
}

/// The record value of `event` in `envelope`; `None` for no value (a
/// `plain` delete). Fails when an image cannot be read.
pub fn record_value(
    event: &ChangeEvent,
    envelope: Envelope,
    now_ms: i64,
) -> Result<Option<String>, String> {
    match envelope {
        Envelope::Debezium => debezium(event, now_ms).map(Some),
        Envelope::Dynamodb => Ok(Some(dynamodb(event))),
        Envelope::Plain => match (&event.new_image, event.op) {
            (_, Op::Remove) => Ok(None),
            (Some(image), _) => plain(image).map(Some),
            (None, _) => Err("the change carries no new image".into()),
        },
    }
}

fn plain(image: &Image) -> Result<String, String> {
    image
        .plain_json()
        .map_err(|err| format!("an image cannot be read: {err}"))
}

fn plain_or_null(image: Option<&Image>) -> Result<String, String> {
    image.map_or(Ok("null".to_owned()), plain)
}

/// Debezium's op code: c (create), u (update), d (delete), r (read: a snapshot row).
pub fn debezium_op(op: Op) -> &'static str {
    match op {
        Op::Insert => "c",
        Op::Modify => "u",
        Op::Remove => "d",
        Op::Read => "r",
    }
}

fn debezium(event: &ChangeEvent, now_ms: i64) -> Result<String, String> {
    let before = plain_or_null(event.old_image.as_ref())?;
    let after = if event.op == Op::Remove {
        "null".to_owned()
    } else {
        plain_or_null(event.new_image.as_ref())?
    };
    let source = serde_json::json!({
        "connector": "dynamo-cdc",
        "version": env!("CARGO_PKG_VERSION"),
        "name": "dynamo-cdc",
        "db": "dynamodb",
        "table": &*event.table,
        "shard": &*event.position.shard,
        "sequence": event.position.sequence.as_str(),
        "ts_ms": event.approx_time_ms,
        "snapshot": if event.op == Op::Read { "true" } else { "false" },
    });
    Ok(format!(
        r#"{{"before":{before},"after":{after},"source":{source},"op":"{}","ts_ms":{now_ms}}}"#,
        debezium_op(event.op)
    ))
}

fn dynamodb(event: &ChangeEvent) -> String {
    let name = match event.op {
        Op::Insert | Op::Read => "INSERT",
        Op::Modify => "MODIFY",
        Op::Remove => "REMOVE",
    };
    let mut record = format!(
        r#"{{"eventID":{},"eventName":"{name}","eventSource":"aws:dynamodb","eventVersion":"1.1","dynamodb":{{"#,
        serde_json::Value::from(event.event_id.as_str())
    );
    if let Some(ms) = event.approx_time_ms {
        record.push_str(&format!(r#""ApproximateCreationDateTime":{},"#, ms / 1000));
    }
    let keys = serde_json::to_string(&event.keys).unwrap_or_else(|_| "{}".into());
    record.push_str(&format!(r#""Keys":{keys}"#));
    if let Some(image) = &event.new_image {
        record.push_str(&format!(r#","NewImage":{}"#, image.json_text()));
    }
    if let Some(image) = &event.old_image {
        record.push_str(&format!(r#","OldImage":{}"#, image.json_text()));
    }
    let view = match (&event.new_image, &event.old_image) {
        (Some(_), Some(_)) => "NEW_AND_OLD_IMAGES",
        (Some(_), None) => "NEW_IMAGE",
        (None, Some(_)) => "OLD_IMAGE",
        (None, None) => "KEYS_ONLY",
    };
    record.push_str(&format!(
        r#","SequenceNumber":"{}","SizeBytes":{},"StreamViewType":"{view}"}}"#,
        event.position.sequence.as_str(),
        event.size_bytes
    ));
    if event.ttl_delete {
        record.push_str(
            r#","userIdentity":{"type":"Service","principalId":"dynamodb.amazonaws.com"}"#,
        );
    }
    record.push('}');
    record
}
