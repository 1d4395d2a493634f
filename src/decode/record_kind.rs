//! What kind of change record a JSON object is, for inputs that mix formats
//! (replay files): records in the Kinesis Data Streams for DynamoDB format,
//! bare or base64-encoded in a Lambda Kinesis event record, are recognised
//! so that they can be named, and a record's keys can be read even when the
//! rest of it does not decode.

use std::borrow::Cow;

use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::decode_item;
use crate::model::Item;

/// A change record in Kinesis Data Streams for DynamoDB format: the shape of
/// a DynamoDB Streams record plus `tableName` and `recordFormat`, without a
/// DynamoDB Streams sequence number (and with ApproximateCreationDateTime in
/// milliseconds or microseconds rather than seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct KinesisFormatRecord {
    /// The record's `tableName`, when present.
    pub table_name: Option<String>,
    /// The record's `eventID`, when present.
    pub event_id: Option<String>,
    /// The Kinesis sequence number of the Lambda Kinesis event record that
    /// carried it; `None` for a bare record.
    pub kinesis_sequence: Option<String>,
    /// The record's `dynamodb.Keys`, when they decode.
    pub keys: Option<Item>,
    /// The record's own JSON (base64-decoded when it came wrapped).
    pub json: String,
}

/// The fields that tell the record formats apart.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(rename = "recordFormat", default)]
    record_format: Option<IgnoredAny>,
    #[serde(rename = "tableName", default, borrow)]
    table_name: Option<Cow<'a, str>>,
    #[serde(rename = "eventID", default, borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    dynamodb: Option<ProbeStream<'a>>,
    #[serde(default, borrow)]
    kinesis: Option<ProbeKinesis<'a>>,
}

#[derive(Deserialize)]
struct ProbeStream<'a> {
    #[serde(rename = "Keys", default, borrow)]
    keys: Option<&'a RawValue>,
    #[serde(rename = "SequenceNumber", default)]
    sequence: Option<IgnoredAny>,
}

/// `kinesis` of a Lambda Kinesis event record.
#[derive(Deserialize)]
struct ProbeKinesis<'a> {
    #[serde(default, borrow)]
    data: Option<Cow<'a, str>>,
    #[serde(rename = "sequenceNumber", default, borrow)]
    sequence: Option<Cow<'a, str>>,
}

/// Recognises a record in Kinesis Data Streams for DynamoDB format: a bare
/// one (a `recordFormat` or `tableName` field and no
/// `dynamodb.SequenceNumber`), or one base64-encoded in `kinesis.data` of a
/// Lambda Kinesis event record (whatever fields it has, as long as it has a
/// `dynamodb` object). `None` for anything else, including JSON that is not
/// an object.
pub fn kinesis_format_record(raw: &str) -> Option<KinesisFormatRecord> {
    let probe: Probe<'_> = serde_json::from_str(raw).ok()?;
    if let Some(kinesis) = &probe.kinesis {
        return unwrap_kinesis_data(kinesis);
    }
    let stream = probe.dynamodb.as_ref()?;
    let marked = probe.record_format.is_some() || probe.table_name.is_some();
    (marked && stream.sequence.is_none()).then(|| KinesisFormatRecord {
        table_name: probe.table_name.as_deref().map(str::to_owned),
        event_id: probe.event_id.as_deref().map(str::to_owned),
        kinesis_sequence: None,
        keys: stream.keys.and_then(|keys| decode_item(keys.get()).ok()),
        json: raw.to_owned(),
    })
}

/// The DynamoDB-format record inside a Lambda Kinesis event record.
fn unwrap_kinesis_data(kinesis: &ProbeKinesis<'_>) -> Option<KinesisFormatRecord> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(kinesis.data.as_deref()?)
        .ok()?;
    let json = String::from_utf8(bytes).ok()?;
    let (table_name, event_id, keys) = {
        let inner: Probe<'_> = serde_json::from_str(&json).ok()?;
        let stream = inner.dynamodb.as_ref()?;
        (
            inner.table_name.as_deref().map(str::to_owned),
            inner.event_id.as_deref().map(str::to_owned),
            stream.keys.and_then(|keys| decode_item(keys.get()).ok()),
        )
    };
    Some(KinesisFormatRecord {
        table_name,
        event_id,
        kinesis_sequence: kinesis.sequence.as_deref().map(str::to_owned),
        keys,
        json,
    })
}

/// The `dynamodb.Keys` of a stream record, read on their own: `None` when
/// the record has no such field or it is not a valid DynamoDB JSON item,
/// whatever the rest of the record holds.
pub fn record_keys(raw: &str) -> Option<Item> {
    let probe: Probe<'_> = serde_json::from_str(raw).ok()?;
    let keys = probe.dynamodb?.keys?;
    decode_item(keys.get()).ok().filter(|keys| !keys.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AttributeValue;

    const BARE: &str = r#"{"awsRegion":"eu-west-1","eventID":"e1","eventName":"INSERT","userIdentity":null,"recordFormat":"application/json","tableName":"orders","dynamodb":{"ApproximateCreationDateTime":1731924555370,"Keys":{"id":{"S":"a"}},"NewImage":{"id":{"S":"a"}},"SizeBytes":60},"eventSource":"aws:dynamodb"}"#;

    fn keys_a() -> Option<Item> {
        Some(Item::from([(
            "id".to_owned(),
            AttributeValue::S("a".into()),
        )]))
    }

    #[test]
    fn a_bare_kinesis_format_record_is_recognised() {
        let record = kinesis_format_record(BARE).expect("kinesis format");
        assert_eq!(record.table_name.as_deref(), Some("orders"));
        assert_eq!(record.event_id.as_deref(), Some("e1"));
        assert_eq!(record.kinesis_sequence, None);
        assert_eq!(record.keys, keys_a());
        assert_eq!(record.json, BARE);
    }

    #[test]
    fn a_record_in_a_lambda_kinesis_event_is_unwrapped() {
        let data = base64::engine::general_purpose::STANDARD.encode(BARE);
        let raw = format!(
            r#"{{"kinesis":{{"kinesisSchemaVersion":"1.0","sequenceNumber":"4965","data":"{data}"}},"eventSource":"aws:kinesis","eventName":"aws:kinesis:record"}}"#
        );
        let record = kinesis_format_record(&raw).expect("kinesis format");
        assert_eq!(record.kinesis_sequence.as_deref(), Some("4965"));
        assert_eq!(record.keys, keys_a());
        assert_eq!(record.json, BARE);
    }

    #[test]
    fn stream_records_and_other_json_are_not_kinesis_format() {
        let stream = r#"{"eventID":"e","eventName":"INSERT","dynamodb":{"Keys":{"id":{"S":"a"}},"SequenceNumber":"100"}}"#;
        let with_sequence = BARE.replace(r#""SizeBytes":60"#, r#""SequenceNumber":"100""#);
        let not_a_record = r#"{"kinesis":{"data":"bm90IGpzb24="}}"#;
        for raw in [stream, &with_sequence, not_a_record, "[1]", "not json"] {
            assert_eq!(kinesis_format_record(raw), None, "{raw}");
        }
    }

    #[test]
    fn keys_are_read_when_the_rest_does_not_decode() {
        let broken = r#"{"eventName":"INSERT","dynamodb":{"Keys":{"id":{"S":"a"}},"NewImage":{"x":{"N":"no"}}}}"#;
        assert_eq!(record_keys(broken), keys_a());
        for raw in [
            r#"{"dynamodb":{"Keys":{"id":{"N":"no"}}}}"#,
            r#"{"dynamodb":{"Keys":{}}}"#,
            r#"{"dynamodb":{}}"#,
            "{}",
            "not json",
        ] {
            assert_eq!(record_keys(raw), None, "{raw}");
        }
    }
}
