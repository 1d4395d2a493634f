//! Change records of either format an input may mix (replay files): DynamoDB
//! Streams records, and records in the Kinesis Data Streams for DynamoDB
//! format, bare or base64-encoded in a Lambda Kinesis event record.
//! [`RecordDecoder`] decodes each with the decoder for its format
//! ([`decode_record`], [`super::kinesis::decode_kinesis_record`]); a
//! record's keys can be read even when the rest of it does not decode.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::kinesis::{decode_kinesis_record, KinesisRecord};
use super::{decode_item, decode_record, DecodeError};
use crate::model::{ChangeEvent, Item};

/// The two formats of a change record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// A DynamoDB Streams record (GetRecords or Lambda DynamoDB event).
    Streams,
    /// A Kinesis Data Streams for DynamoDB record (bare, or in a Lambda
    /// Kinesis event record).
    Kinesis,
}

/// Why a change record was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// A DynamoDB Streams record the stream decoder refused.
    #[error("{0}")]
    Streams(DecodeError),
    /// A Kinesis-format record the Kinesis decoder refused.
    #[error("Kinesis-format record{}: {error}", event_id.as_ref().map(|id| format!(" (eventID {id:?})")).unwrap_or_default())]
    Kinesis {
        /// The record's `eventID`, when readable.
        event_id: Option<String>,
        /// What is wrong.
        error: DecodeError,
    },
    /// A Kinesis-format record of another table than the one decoded for.
    #[error("Kinesis-format record of table {found:?}, not of table {expected:?}")]
    OtherTable {
        /// The record's `tableName`.
        found: String,
        /// The table the records are decoded for.
        expected: String,
    },
}

/// A change record that did not decode.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRecord {
    /// The format it was read as.
    pub format: RecordFormat,
    /// Why it was rejected.
    pub reason: RejectReason,
    /// Its `dynamodb.Keys` when they decode (none for another table's record).
    pub keys: Option<Item>,
}

/// Decodes the change records of one input of `table`, in input order,
/// whichever format each is in; the format of the previous record is tried
/// first. Positions are on `shard`: a DynamoDB Streams record's sequence
/// number; for a Kinesis-format record the Kinesis sequence number of the
/// Lambda Kinesis event record that carried it, or for a bare one its
/// ordinal among the input's bare Kinesis-format records (1, 2, …; a
/// record read twice takes a new one, so ordinals grow but may skip).
/// Kinesis-format records of other tables are rejected.
pub struct RecordDecoder {
    table: Arc<str>,
    shard: Arc<str>,
    ordinal: u64,
    last: RecordFormat,
}

impl fmt::Debug for RecordDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordDecoder")
            .field("table", &self.table)
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}

impl RecordDecoder {
    /// A decoder for the records of `table`, placed on `shard`.
    pub fn new(table: &Arc<str>, shard: &Arc<str>) -> Self {
        Self {
            table: Arc::clone(table),
            shard: Arc::clone(shard),
            ordinal: 0,
            last: RecordFormat::Streams,
        }
    }

    /// Decodes one raw record of either format.
    pub fn decode(&mut self, raw: &str) -> Result<ChangeEvent, Box<RejectedRecord>> {
        if self.last == RecordFormat::Kinesis {
            if let Some(result) = self.decode_kinesis(raw) {
                return result;
            }
        }
        match decode_record(raw, &self.table, &self.shard) {
            Ok(event) => {
                self.last = RecordFormat::Streams;
                Ok(event)
            }
            Err(error) => self.decode_kinesis(raw).unwrap_or_else(|| {
                self.last = RecordFormat::Streams;
                Err(Box::new(RejectedRecord {
                    format: RecordFormat::Streams,
                    reason: RejectReason::Streams(error),
                    keys: record_keys(raw),
                }))
            }),
        }
    }

    /// Decodes `raw` as a Kinesis-format record; `None` when it is not one.
    fn decode_kinesis(&mut self, raw: &str) -> Option<Result<ChangeEvent, Box<RejectedRecord>>> {
        let record = kinesis_format_record(raw)?;
        self.last = RecordFormat::Kinesis;
        let sequence = match &record.kinesis_sequence {
            Some(sequence) => sequence.clone(),
            None => {
                self.ordinal += 1;
                self.ordinal.to_string()
            }
        };
        let table = &self.table;
        let followed = |name: &str| (name == &**table).then(|| Arc::clone(table));
        let decoded =
            decode_kinesis_record(record.json.as_bytes(), &sequence, &self.shard, followed);
        let (reason, keys) = match decoded {
            Ok(KinesisRecord::Change { event, .. }) => return Some(Ok(*event)),
            Ok(KinesisRecord::OtherTable(found)) => {
                let expected = table.to_string();
                (RejectReason::OtherTable { found, expected }, None)
            }
            Err(failure) => {
                let event_id = record.event_id;
                (
                    RejectReason::Kinesis {
                        event_id,
                        error: failure.error,
                    },
                    record.keys,
                )
            }
        };
        Some(Err(Box::new(RejectedRecord {
            format: RecordFormat::Kinesis,
            reason,
            keys,
        })))
    }
}

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

    fn decoder() -> RecordDecoder {
        RecordDecoder::new(&Arc::from("orders"), &Arc::from("replay:input"))
    }

    #[test]
    fn both_formats_decode_and_bare_kinesis_records_take_ordinals() {
        let stream = r#"{"eventID":"s","eventName":"INSERT","dynamodb":{"Keys":{"id":{"S":"a"}},"SequenceNumber":"100"}}"#;
        let mut decoder = decoder();
        let first = decoder.decode(BARE).expect("kinesis");
        assert_eq!(first.position.sequence.as_str(), "1");
        assert_eq!(first.keys, keys_a().expect("keys"));
        assert_eq!(first.approx_time_ms, Some(1_731_924_555_370));
        assert_eq!(
            decoder
                .decode(stream)
                .expect("stream")
                .position
                .sequence
                .as_str(),
            "100"
        );
        let again = decoder.decode(BARE).expect("kinesis");
        assert_eq!(again.position.sequence.as_str(), "2");
        assert_eq!(
            again.version(),
            first.version(),
            "a duplicate keeps its version"
        );
        let data = base64::engine::general_purpose::STANDARD.encode(BARE);
        let wrapped = format!(r#"{{"kinesis":{{"sequenceNumber":"4965","data":"{data}"}}}}"#);
        let event = decoder.decode(&wrapped).expect("wrapped");
        assert_eq!(event.position.sequence.as_str(), "4965");
    }

    #[test]
    fn rejections_say_which_format_and_why() {
        let mut decoder = decoder();
        let other = decoder
            .decode(&BARE.replace("\"orders\"", "\"customers\""))
            .unwrap_err();
        assert_eq!(other.format, RecordFormat::Kinesis);
        assert_eq!(other.keys, None);
        assert_eq!(
            other.reason.to_string(),
            r#"Kinesis-format record of table "customers", not of table "orders""#
        );
        let untimed = BARE.replace(r#""ApproximateCreationDateTime":1731924555370,"#, "");
        let failed = decoder.decode(&untimed).unwrap_err();
        assert_eq!(failed.keys, keys_a());
        let text = failed.reason.to_string();
        assert!(
            text.starts_with(r#"Kinesis-format record (eventID "e1"): "#),
            "{text}"
        );
        assert!(text.contains("ApproximateCreationDateTime"), "{text}");
        let broken = r#"{"eventID":"s","eventName":"INSERT","dynamodb":{"Keys":{"id":{"S":"a"}},"SequenceNumber":"x"}}"#;
        let failed = decoder.decode(broken).unwrap_err();
        assert_eq!(failed.format, RecordFormat::Streams);
        assert_eq!(failed.keys, keys_a());
        assert!(
            failed.reason.to_string().contains("SequenceNumber"),
            "{}",
            failed.reason
        );
    }
}
