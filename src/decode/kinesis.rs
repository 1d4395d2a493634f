//! Records DynamoDB writes to a Kinesis data stream (a table's Kinesis
//! streaming destination) to [`ChangeEvent`]s, with time versions.
//!
//! The record is DynamoDB's stream record without a sequence number, plus
//! `tableName` and `recordFormat`; `ApproximateCreationDateTime` counts
//! milliseconds, or microseconds when
//! `ApproximateCreationDateTimePrecision` is `MICROSECOND`.
//!
//! **Versions.** Kinesis delivers at least once and may reorder one item's
//! changes after a reshard, so the version cannot be the Kinesis sequence
//! number (that stays the position, for checkpoints). It is
//! `micros * 10^20 + tie`, where `micros` is the creation time in
//! microseconds and `tie` is a 64-bit FNV-1a hash of the `eventID`: a
//! duplicate carries the same event id and time, so it compares equal to
//! itself; two changes of one item are ordered by creation time; two
//! changes in the same microsecond (or millisecond, with MILLISECOND
//! precision) are ordered by the hash — deterministically, so every replay
//! converges to the same row, but not necessarily the later change.
//! Versions have 36 digits until the year 2286, within the 40 a sink holds.

use std::sync::Arc;

use serde::Deserialize;

use super::image_field::{absent, FastImage, ImageField};
use super::record::{item, Parts};
use super::record_scan::scan_change;
use super::DecodeError;
use crate::model::{time_version, ChangeEvent, Item};

/// The precision of `ApproximateCreationDateTime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimePrecision {
    /// Milliseconds (AWS's default).
    Millisecond,
    /// Microseconds (what this engine asks users to configure).
    Microsecond,
}

/// A decoded Kinesis record.
#[derive(Debug)]
pub enum KinesisRecord {
    /// A change of a followed table.
    Change {
        /// The change.
        event: Box<ChangeEvent>,
        /// The precision its time came with.
        precision: TimePrecision,
    },
    /// A record of a table the caller does not follow.
    OtherTable(String),
}

/// A Kinesis record that could not be decoded; `table` when it was readable.
#[derive(Debug)]
pub struct KinesisFailure {
    /// The record's `tableName`, when it could be read.
    pub table: Option<String>,
    /// Why.
    pub error: DecodeError,
}

#[derive(Deserialize)]
struct WireHead<'a> {
    #[serde(rename = "tableName", borrow)]
    table: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireRecord<'a> {
    #[serde(rename = "tableName", borrow)]
    table: std::borrow::Cow<'a, str>,
    #[serde(rename = "eventID")]
    event_id: String,
    #[serde(rename = "eventName", borrow)]
    event_name: std::borrow::Cow<'a, str>,
    #[serde(rename = "userIdentity", default)]
    user_identity: Option<WireIdentity>,
    #[serde(rename = "awsRegion", default, borrow)]
    aws_region: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    dynamodb: WireChange<'a>,
}

#[derive(Deserialize)]
struct WireIdentity {
    #[serde(rename = "principalId", alias = "PrincipalId", default)]
    principal_id: Option<String>,
    #[serde(rename = "type", alias = "Type", default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct WireChange<'a> {
    #[serde(rename = "ApproximateCreationDateTime", default)]
    time: Option<f64>,
    #[serde(rename = "ApproximateCreationDateTimePrecision", default, borrow)]
    precision: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "Keys", deserialize_with = "item")]
    keys: Item,
    #[serde(rename = "NewImage", default = "absent")]
    new_image: Option<FastImage>,
    #[serde(rename = "OldImage", default = "absent")]
    old_image: Option<FastImage>,
    #[serde(rename = "SizeBytes", default)]
    size_bytes: u64,
}

/// Decodes the `data` of one Kinesis record read at `sequence` from `shard`.
/// `followed` maps a `tableName` to the table's shared name, or `None` for
/// a table the caller does not follow.
///
/// Errors name the record (event id and Kinesis sequence number), the field
/// and what is wrong, and carry the table name when it was readable.
pub fn decode_kinesis_record(
    data: &[u8],
    sequence: &str,
    shard: &Arc<str>,
    followed: impl Fn(&str) -> Option<Arc<str>>,
) -> Result<KinesisRecord, KinesisFailure> {
    let fail = |table: Option<String>, path: &str, message: String| KinesisFailure {
        table,
        error: DecodeError::Record {
            event_id: "?".into(),
            sequence: sequence.to_owned(),
            path: path.to_owned(),
            message,
        },
    };
    let text = std::str::from_utf8(data).map_err(|err| {
        fail(
            None,
            ".",
            format!("the record data is not UTF-8 text: {err}"),
        )
    })?;
    decode_text(text, sequence, shard, &followed, &fail, true)
}

/// [`decode_kinesis_record`] on text; `fast` tries the strict walk first.
fn decode_text(
    text: &str,
    sequence: &str,
    shard: &Arc<str>,
    followed: &impl Fn(&str) -> Option<Arc<str>>,
    fail: &impl Fn(Option<String>, &str, String) -> KinesisFailure,
    fast: bool,
) -> Result<KinesisRecord, KinesisFailure> {
    // The strict walk reads well-formed, escape-free records; serde reads
    // the rest, and a path-tracking pass explains a failure (after checking
    // whether the table is followed at all).
    let scanned = if fast { scan_change(text) } else { None };
    if let Some(scanned) = scanned.filter(|s| s.sequence.is_none()) {
        if let Some(table) = scanned.table {
            let fields = Fields {
                table,
                precision: scanned.precision,
                time: scanned.parts.approx_seconds,
                parts: scanned.parts,
            };
            return fields.finish(sequence, shard, followed, fail);
        }
    }
    let wire: WireRecord<'_> = match serde_json::from_str(text) {
        Ok(wire) => wire,
        Err(_) => return explain(text, followed, fail),
    };
    let identity = wire.user_identity.as_ref();
    let fields = Fields {
        table: &wire.table,
        precision: wire.dynamodb.precision.as_deref(),
        time: wire.dynamodb.time,
        parts: Parts {
            event_id: wire.event_id.clone(),
            event_name: &wire.event_name,
            aws_region: wire.aws_region.as_deref(),
            identity_type: identity.and_then(|i| i.kind.as_deref()),
            identity_principal: identity.and_then(|i| i.principal_id.as_deref()),
            approx_seconds: None,
            keys: wire.dynamodb.keys,
            new_image: wire.dynamodb.new_image.map(ImageField::into_image),
            old_image: wire.dynamodb.old_image.map(ImageField::into_image),
            sequence: "",
            size_bytes: wire.dynamodb.size_bytes,
            version: None,
        },
    };
    fields.finish(sequence, shard, followed, fail)
}

/// A Kinesis record's fields, however they were read.
struct Fields<'a> {
    table: &'a str,
    precision: Option<&'a str>,
    /// `ApproximateCreationDateTime` as written (milliseconds or microseconds).
    time: Option<f64>,
    parts: Parts<'a>,
}

impl Fields<'_> {
    /// Routes, versions and builds the change.
    fn finish(
        self,
        sequence: &str,
        shard: &Arc<str>,
        followed: &impl Fn(&str) -> Option<Arc<str>>,
        fail: &impl Fn(Option<String>, &str, String) -> KinesisFailure,
    ) -> Result<KinesisRecord, KinesisFailure> {
        let Some(table) = followed(self.table) else {
            return Ok(KinesisRecord::OtherTable(self.table.to_owned()));
        };
        let name = Some(self.table.to_owned());
        let time_path = "dynamodb.ApproximateCreationDateTime";
        let precision = match self.precision {
            None | Some("MILLISECOND") => TimePrecision::Millisecond,
            Some("MICROSECOND") => TimePrecision::Microsecond,
            Some(other) => {
                return Err(fail(
                    name,
                    "dynamodb.ApproximateCreationDateTimePrecision",
                    format!("unknown precision {other:?} (expected MILLISECOND or MICROSECOND)"),
                ))
            }
        };
        let time = self
            .time
            .ok_or_else(|| fail(name.clone(), time_path, "missing".into()))?;
        let micros = creation_micros(time, precision).ok_or_else(|| {
            fail(
                name.clone(),
                time_path,
                format!("{time} is not a time after 1970"),
            )
        })?;
        let version = time_version(micros, crate::hash::fnv1a(self.parts.event_id.as_bytes()))
            .map_err(|err| fail(name.clone(), time_path, err.to_string()))?;
        let event = Parts {
            approx_seconds: Some(micros as f64 / 1_000_000.0),
            sequence,
            version: Some(version),
            ..self.parts
        }
        .finish(&table, shard)
        .map_err(|error| KinesisFailure { table: name, error })?;
        Ok(KinesisRecord::Change {
            event: Box::new(event),
            precision,
        })
    }
}

/// A record the one-pass read refused: [`KinesisRecord::OtherTable`] when
/// its table is not followed (its content is then none of our business),
/// else the failure with the path of the problem.
fn explain(
    text: &str,
    followed: &impl Fn(&str) -> Option<Arc<str>>,
    fail: &impl Fn(Option<String>, &str, String) -> KinesisFailure,
) -> Result<KinesisRecord, KinesisFailure> {
    let head: WireHead<'_> = serde_json::from_str(text)
        .map_err(|err| fail(None, ".", format!("not a DynamoDB change record: {err}")))?;
    let name = head.table.ok_or_else(|| {
        fail(
            None,
            "tableName",
            "missing: not a DynamoDB change record".into(),
        )
    })?;
    if followed(&name).is_none() {
        return Ok(KinesisRecord::OtherTable(name.into_owned()));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let (path, message) = match serde_path_to_error::deserialize::<_, WireRecord<'_>>(&mut de) {
        Ok(_) => (".".to_owned(), "decodes only on a second try".to_owned()),
        Err(err) => (
            crate::model::json::display_path(err.path()),
            err.inner().to_string(),
        ),
    };
    Err(fail(Some(name.into_owned()), &path, message))
}

/// The creation time in microseconds since the Unix epoch.
fn creation_micros(time: f64, precision: TimePrecision) -> Option<u64> {
    let micros = match precision {
        TimePrecision::Millisecond => time * 1000.0,
        TimePrecision::Microsecond => time,
    };
    // Below 2^53 the value is an exact integer; beyond the year 2286 it is refused.
    (micros.is_finite() && (0.0..1e16).contains(&micros)).then(|| micros.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Op;

    const RECORD: &str = r#"{"awsRegion":"us-east-1","eventID":"a7f3","eventName":"MODIFY",
        "userIdentity":null,"recordFormat":"application/json","tableName":"orders",
        "dynamodb":{"ApproximateCreationDateTime":1732881600123456,
        "ApproximateCreationDateTimePrecision":"MICROSECOND",
        "Keys":{"pk":{"S":"a"}},"NewImage":{"pk":{"S":"a"},"n":{"N":"1"}},
        "OldImage":{"pk":{"S":"a"}},"SizeBytes":40},"eventSource":"aws:dynamodb"}"#;

    fn orders(name: &str) -> Option<Arc<str>> {
        (name == "orders").then(|| Arc::from("orders"))
    }

    fn decode(text: &str) -> Result<KinesisRecord, KinesisFailure> {
        decode_kinesis_record(
            text.as_bytes(),
            "4959000000000000000000000000000000000000000000000000001",
            &Arc::from("shardId-000000000000"),
            orders,
        )
    }

    #[test]
    fn decodes_a_change_with_a_time_version() {
        let Ok(KinesisRecord::Change { event, precision }) = decode(RECORD) else {
            panic!("not a change");
        };
        assert_eq!(precision, TimePrecision::Microsecond);
        assert_eq!(event.op, Op::Modify);
        assert_eq!(&*event.table, "orders");
        assert_eq!(event.approx_time_ms, Some(1_732_881_600_123));
        assert!(event.version().digits().starts_with("1732881600123456"));
        assert_eq!(event.version().digits().len(), 36);
        assert_eq!(event.position.sequence.digits().len(), 55);
        let again = decode(RECORD).ok();
        let Some(KinesisRecord::Change { event: twin, .. }) = again else {
            panic!("not a change");
        };
        assert_eq!(
            twin.version(),
            event.version(),
            "a duplicate compares equal"
        );
    }

    #[test]
    fn later_changes_have_higher_versions_and_milliseconds_scale() {
        let later = RECORD
            .replace("1732881600123456", "1732881600123457")
            .replace("a7f3", "zz");
        let version = |text: &str| match decode(text) {
            Ok(KinesisRecord::Change { event, .. }) => event.version().clone(),
            other => panic!("{other:?}"),
        };
        assert!(version(&later) > version(RECORD));
        let millis = RECORD
            .replace("1732881600123456", "1732881600123")
            .replace("MICROSECOND", "MILLISECOND");
        assert!(version(&millis).digits().starts_with("1732881600123000"));
    }

    #[test]
    fn other_tables_and_bad_records_are_told_apart() {
        let other = RECORD.replace("\"orders\"", "\"customers\"");
        assert!(matches!(decode(&other), Ok(KinesisRecord::OtherTable(t)) if t == "customers"));
        let bad = RECORD.replace(r#""n":{"N":"1"}"#, r#""n":{"N":"x"}"#);
        let failure = decode(&bad).unwrap_err();
        assert_eq!(failure.table.as_deref(), Some("orders"));
        assert!(
            failure.error.to_string().contains("NewImage"),
            "{}",
            failure.error
        );
        let failure = decode("not json").unwrap_err();
        assert!(failure.table.is_none());
        assert!(failure
            .error
            .to_string()
            .contains("not a DynamoDB change record"));
    }

    #[test]
    fn the_fast_walk_and_serde_agree() {
        let sequence = "4959000000000000000000000000000000000000000000000000001";
        let shard: Arc<str> = Arc::from("s");
        let fail = |table: Option<String>, path: &str, message: String| KinesisFailure {
            table,
            error: DecodeError::Page(format!("{path}: {message}")),
        };
        let millis = RECORD
            .replace("1732881600123456", "1732881600123")
            .replace("MICROSECOND", "MILLISECOND");
        let ttl = RECORD.replace("MODIFY", "REMOVE").replace(
            "\"userIdentity\":null",
            r#""userIdentity":{"type":"Service","principalId":"dynamodb.amazonaws.com"}"#,
        );
        let other = RECORD.replace("\"orders\"", "\"customers\"");
        let no_time = RECORD.replace("\"ApproximateCreationDateTime\":1732881600123456,", "");
        for text in [RECORD.to_owned(), millis, ttl, other, no_time] {
            let fast = decode_text(&text, sequence, &shard, &orders, &fail, true);
            let slow = decode_text(&text, sequence, &shard, &orders, &fail, false);
            assert!(scan_change(&text).is_some(), "the walk reads {text}");
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{text}");
        }
    }

    #[test]
    fn ttl_deletes_are_flagged() {
        let ttl = RECORD.replace("MODIFY", "REMOVE").replace(
            "\"userIdentity\":null",
            r#""userIdentity":{"type":"Service","principalId":"dynamodb.amazonaws.com"}"#,
        );
        let Ok(KinesisRecord::Change { event, .. }) = decode(&ttl) else {
            panic!("not a change");
        };
        assert!(event.ttl_delete);
    }
}
