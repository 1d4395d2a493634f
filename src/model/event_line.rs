//! A change event written as one JSON Lines change, the format of the `jsonl`
//! and `s3` sinks, with images copied as the text they were read as.

use super::{AttributeValue, ChangeEvent, Item};

impl ChangeEvent {
    /// Appends the event as one line of JSON and a newline: the same object
    /// (field names, order and values) as its `Serialize` form, which
    /// [`crate::decode::decode_event_line`] reads back, plus a `"version"`
    /// field when the version is not the position's sequence number
    /// (Kinesis changes). Images read from a stream are copied, not
    /// re-encoded.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"table\":");
        push_string(out, &self.table);
        out.extend_from_slice(b",\"op\":\"");
        out.extend_from_slice(self.op.as_str().as_bytes());
        out.extend_from_slice(b"\",\"keys\":");
        write_keys(out, &self.keys);
        if let Some(image) = &self.new_image {
            out.extend_from_slice(b",\"new_image\":");
            image.write_json(out);
        }
        if let Some(image) = &self.old_image {
            out.extend_from_slice(b",\"old_image\":");
            image.write_json(out);
        }
        out.extend_from_slice(b",\"position\":{\"shard\":");
        push_string(out, &self.position.shard);
        out.extend_from_slice(b",\"sequence\":\"");
        out.extend_from_slice(self.position.sequence.as_str().as_bytes());
        out.push(b'"');
        out.push(b'}');
        let mut digits = itoa::Buffer::new();
        if let Some(ms) = self.approx_time_ms {
            out.extend_from_slice(b",\"approx_time_ms\":");
            out.extend_from_slice(digits.format(ms).as_bytes());
        }
        out.extend_from_slice(if self.ttl_delete {
            b",\"ttl_delete\":true,\"event_id\":"
        } else {
            b",\"ttl_delete\":false,\"event_id\":"
        });
        push_string(out, &self.event_id);
        out.extend_from_slice(b",\"size_bytes\":");
        out.extend_from_slice(digits.format(self.size_bytes).as_bytes());
        if self.version != self.position.sequence {
            out.extend_from_slice(b",\"version\":\"");
            out.extend_from_slice(self.version.as_str().as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b"}\n");
    }
}

/// Key attributes as DynamoDB JSON; S and N values (nearly every key) are
/// written directly, anything else through serde.
fn write_keys(out: &mut Vec<u8>, keys: &Item) {
    out.push(b'{');
    for (i, (name, value)) in keys.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_string(out, name);
        match value {
            AttributeValue::S(text) => {
                out.extend_from_slice(b":{\"S\":");
                push_string(out, text);
                out.push(b'}');
            }
            // Number text is digits, sign, point and exponent: no escapes.
            AttributeValue::N(number) => {
                out.extend_from_slice(b":{\"N\":\"");
                out.extend_from_slice(number.as_str().as_bytes());
                out.extend_from_slice(b"\"}");
            }
            other => {
                out.push(b':');
                // Serializing a value into memory cannot fail.
                let _ = serde_json::to_writer(&mut *out, other);
            }
        }
    }
    out.push(b'}');
}

fn push_string(out: &mut Vec<u8>, text: &str) {
    // Serializing a &str into memory cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::decode::{decode_event_line, decode_image, decode_record};
    use crate::model::{AttributeValue, ChangeEvent, Item, Op, Position, SequenceNumber};

    fn sample() -> ChangeEvent {
        ChangeEvent {
            table: Arc::from("or\"ders"),
            op: Op::Modify,
            keys: Item::from([
                ("pk".to_owned(), AttributeValue::S("a\"b".into())),
                (
                    "sk".to_owned(),
                    AttributeValue::N(crate::model::Number::parse("-1.5e3").unwrap()),
                ),
                ("b".to_owned(), AttributeValue::B(vec![0, 255])),
            ]),
            new_image: Some(decode_image(r#"{"pk":{"S":"a"},"n":{"N":"1.50"}}"#).unwrap()),
            old_image: Some(Item::from([("pk".to_owned(), AttributeValue::S("a".into()))]).into()),
            position: Position {
                shard: Arc::from("shardId-1"),
                sequence: SequenceNumber::parse("000042").unwrap(),
            },
            version: SequenceNumber::parse("000042").unwrap(),
            approx_time_ms: Some(17),
            ttl_delete: true,
            event_id: "e\n1".into(),
            size_bytes: 9,
        }
    }

    #[test]
    fn is_the_serialize_form_on_one_line() {
        let event = sample();
        let mut line = Vec::new();
        event.write_json_line(&mut line);
        let text = String::from_utf8(line).unwrap();
        assert!(
            text.ends_with('\n') && text.matches('\n').count() == 1,
            "{text}"
        );
        let fast: serde_json::Value = serde_json::from_str(&text).unwrap();
        let slow = serde_json::to_value(&event).unwrap();
        assert_eq!(fast, slow);
        assert_eq!(decode_event_line(text.trim_end()).unwrap(), event);
    }

    #[test]
    fn optional_fields_are_left_out() {
        let mut event = sample();
        event.new_image = None;
        event.old_image = None;
        event.approx_time_ms = None;
        let mut line = Vec::new();
        event.write_json_line(&mut line);
        let fast: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(fast, serde_json::to_value(&event).unwrap());
    }

    #[test]
    fn a_decoded_record_is_copied_through() {
        let raw = r#"{"eventID":"1","eventName":"INSERT","dynamodb":{"Keys":{"pk":{"S":"a"}},
            "NewImage":{"pk":{"S":"a"}, "z":{"N":"12345678901234567890123456789012345678"}},
            "SequenceNumber":"100","SizeBytes":5}}"#;
        let event = decode_record(raw, &Arc::from("t"), &Arc::from("s")).unwrap();
        let mut line = Vec::new();
        event.write_json_line(&mut line);
        let text = String::from_utf8(line).unwrap();
        assert!(text.contains(
            r#""new_image":{"pk":{"S":"a"},"z":{"N":"12345678901234567890123456789012345678"}}"#
        ));
        assert_eq!(decode_event_line(text.trim_end()).unwrap(), event);
    }
}
