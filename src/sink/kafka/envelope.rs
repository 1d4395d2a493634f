//! A change as a Kafka record: the key (the item's key attributes as
//! canonical JSON) and the value in one of three envelopes. Images keep
//! every digit of their numbers in every envelope.

use serde::Deserialize;

use crate::model::{plain_item, push_json_string, AttributeValue, ChangeEvent, Image, Number, Op};

/// The shape of record values.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
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
/// names, the same bytes for every change of an item — numbers in their
/// canonical text ([`Number::canonical_text`]), since a stream record's
/// `Keys` may repeat a request's `1.50` where another change of the item
/// says `1.5`.
pub fn record_key(event: &ChangeEvent) -> String {
    let odd_number = |value: &AttributeValue| match value {
        AttributeValue::N(number) => !number.is_canonical(),
        _ => false,
    };
    if !event.keys.values().any(odd_number) {
        return plain_item(&event.keys);
    }
    let keys = event
        .keys
        .iter()
        .map(|(name, value)| {
            let value = match value {
                AttributeValue::N(number) => Number::parse(&number.canonical_text())
                    .map_or_else(|_| value.clone(), AttributeValue::N),
                other => other.clone(),
            };
            (name.clone(), value)
        })
        .collect();
    plain_item(&keys)
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

/// Debezium's envelope, written straight into one buffer. `source` keeps
/// its keys in name order, as a JSON map of them would print.
fn debezium(event: &ChangeEvent, now_ms: i64) -> Result<String, String> {
    let before = plain_or_null(event.old_image.as_ref())?;
    let after = if event.op == Op::Remove {
        "null".to_owned()
    } else {
        plain_or_null(event.new_image.as_ref())?
    };
    let mut out = String::with_capacity(before.len() + after.len() + 320);
    out.push_str(r#"{"before":"#);
    out.push_str(&before);
    out.push_str(r#","after":"#);
    out.push_str(&after);
    out.push_str(
        r#","source":{"connector":"dynamo-cdc","db":"dynamodb","name":"dynamo-cdc","sequence":"#,
    );
    push_json_string(&mut out, event.position.sequence.as_str());
    out.push_str(r#","shard":"#);
    push_json_string(&mut out, &event.position.shard);
    out.push_str(r#","snapshot":"#);
    out.push_str(if event.op == Op::Read {
        r#""true""#
    } else {
        r#""false""#
    });
    out.push_str(r#","table":"#);
    push_json_string(&mut out, &event.table);
    out.push_str(r#","ts_ms":"#);
    match event.approx_time_ms {
        Some(ms) => out.push_str(&ms.to_string()),
        None => out.push_str("null"),
    }
    out.push_str(concat!(
        r#","version":""#,
        env!("CARGO_PKG_VERSION"),
        r#""},"op":""#
    ));
    out.push_str(debezium_op(event.op));
    out.push_str(r#"","ts_ms":"#);
    out.push_str(&now_ms.to_string());
    out.push('}');
    Ok(out)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::decode::decode_record;

    /// A MODIFY as DynamoDB Streams delivers it, with a 38-digit number and a set.
    const MODIFY: &str = r#"{"eventID":"e1","eventName":"MODIFY","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1","dynamodb":{"ApproximateCreationDateTime":1764000000,"Keys":{"pk":{"S":"user#1"},"sk":{"N":"7"}},"NewImage":{"pk":{"S":"user#1"},"sk":{"N":"7"},"n":{"N":"12345678901234567890123456789012345678"},"tags":{"SS":["a","b"]}},"OldImage":{"pk":{"S":"user#1"},"sk":{"N":"7"},"n":{"N":"1"}},"SequenceNumber":"4421584500000000017450439091","SizeBytes":120,"StreamViewType":"NEW_AND_OLD_IMAGES"}}"#;

    /// A REMOVE with only the old image.
    const REMOVE: &str = r#"{"eventID":"e2","eventName":"REMOVE","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1","dynamodb":{"ApproximateCreationDateTime":1764000001,"Keys":{"pk":{"S":"user#1"},"sk":{"N":"7"}},"OldImage":{"pk":{"S":"user#1"},"sk":{"N":"7"},"n":{"N":"2"}},"SequenceNumber":"4421584500000000017450439092","SizeBytes":60,"StreamViewType":"NEW_AND_OLD_IMAGES"}}"#;

    fn event(raw: &str) -> ChangeEvent {
        decode_record(raw, &Arc::from("users"), &Arc::from("shardId-1")).expect("a record")
    }

    #[test]
    fn the_key_is_the_same_canonical_json_for_every_change() {
        assert_eq!(record_key(&event(MODIFY)), r#"{"pk":"user#1","sk":7}"#);
        assert_eq!(record_key(&event(REMOVE)), record_key(&event(MODIFY)));
        // An update keyed `7.0` or `70E-1`: the same key as the other changes.
        for written in ["7.0", "70E-1", "+7"] {
            let modify = MODIFY.replacen(
                r#""sk":{"N":"7"}"#,
                &format!(r#""sk":{{"N":"{written}"}}"#),
                1,
            );
            assert_eq!(
                record_key(&event(&modify)),
                record_key(&event(MODIFY)),
                "{written}"
            );
        }
    }

    #[test]
    fn debezium_envelope() {
        let value = record_value(&event(MODIFY), Envelope::Debezium, 1_764_000_000_500)
            .unwrap()
            .unwrap();
        assert_eq!(
            value,
            r#"{"before":{"pk":"user#1","sk":7,"n":1},"after":{"pk":"user#1","sk":7,"n":12345678901234567890123456789012345678,"tags":["a","b"]},"source":{"connector":"dynamo-cdc","db":"dynamodb","name":"dynamo-cdc","sequence":"4421584500000000017450439091","shard":"shardId-1","snapshot":"false","table":"users","ts_ms":1764000000000,"version":"0.1.0"},"op":"u","ts_ms":1764000000500}"#
                .replace("0.1.0", env!("CARGO_PKG_VERSION"))
        );
        let removed = record_value(&event(REMOVE), Envelope::Debezium, 1)
            .unwrap()
            .unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&removed).unwrap();
        assert_eq!(parsed["op"], "d");
        assert_eq!(parsed["after"], serde_json::Value::Null);
        assert_eq!(parsed["before"]["n"], 2);
    }

    #[test]
    fn dynamodb_envelope_is_the_stream_record() {
        let value = record_value(&event(MODIFY), Envelope::Dynamodb, 0)
            .unwrap()
            .unwrap();
        assert_eq!(
            value,
            r#"{"eventID":"e1","eventName":"MODIFY","eventSource":"aws:dynamodb","eventVersion":"1.1","dynamodb":{"ApproximateCreationDateTime":1764000000,"Keys":{"pk":{"S":"user#1"},"sk":{"N":"7"}},"NewImage":{"pk":{"S":"user#1"},"sk":{"N":"7"},"n":{"N":"12345678901234567890123456789012345678"},"tags":{"SS":["a","b"]}},"OldImage":{"pk":{"S":"user#1"},"sk":{"N":"7"},"n":{"N":"1"}},"SequenceNumber":"4421584500000000017450439091","SizeBytes":120,"StreamViewType":"NEW_AND_OLD_IMAGES"}}"#
        );
        // It reads back as the same change.
        let again = event(&value);
        assert_eq!(again.new_image, event(MODIFY).new_image);
        assert_eq!(again.position.sequence, event(MODIFY).position.sequence);
    }

    #[test]
    fn plain_envelope_is_the_new_image_and_nothing_for_a_delete() {
        assert_eq!(
            record_value(&event(MODIFY), Envelope::Plain, 0).unwrap(),
            Some(
                r#"{"pk":"user#1","sk":7,"n":12345678901234567890123456789012345678,"tags":["a","b"]}"#
                    .to_owned()
            )
        );
        assert_eq!(
            record_value(&event(REMOVE), Envelope::Plain, 0).unwrap(),
            None
        );
    }
}
