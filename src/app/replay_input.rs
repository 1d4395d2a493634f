//! What a replay file holds, line by line: stream records (JSON Lines),
//! GetRecords pages or Lambda events (`{"Records":[…]}`, one per line or one
//! pretty-printed document per file), change events as the `jsonl` sink
//! writes them, or the engine's own dead letters. A UTF-8 byte-order mark
//! and blank lines before the first line are skipped.
//!
//! A record may be a DynamoDB Streams record or a record in the Kinesis
//! Data Streams for DynamoDB format (bare, or inside a Lambda Kinesis
//! event), decoded by [`RecordDecoder`]; a Kinesis-format record of another
//! table than the replayed one is rejected. A rejected record's keys are
//! kept when readable, for key inference.

use std::fmt;
use std::io::{BufRead, BufReader, Read as _};
use std::path::Path;
use std::sync::Arc;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::replay_error::ReplayError;
use crate::decode::{decode_event_line, RecordDecoder};
use crate::model::{ChangeEvent, Item};

/// One decoded entry of a replay file.
pub enum Entry {
    /// A change.
    Event(Box<ChangeEvent>),
    /// Something that could not be decoded: the raw JSON and why.
    Bad {
        /// The offending JSON (the line when it is not JSON at all, as a string).
        raw: Box<RawValue>,
        /// What is wrong, naming the file, line and record.
        reason: String,
        /// The record's keys when they could be read although the rest
        /// could not (for key inference); `None` otherwise.
        keys: Option<Item>,
    },
}

/// Where an entry comes from: a file, one of its lines, one record of a
/// `Records` array. Displays as `orders.json line 3 record 2`.
#[derive(Clone, Copy)]
struct Origin<'p> {
    path: &'p Path,
    line: Option<usize>,
    record: Option<usize>,
}

impl<'p> Origin<'p> {
    /// A whole file (one pretty-printed document).
    fn file(path: &'p Path) -> Self {
        Self {
            path,
            line: None,
            record: None,
        }
    }

    /// One line of a file (1-based).
    fn line(path: &'p Path, line: usize) -> Self {
        Self {
            line: Some(line),
            ..Self::file(path)
        }
    }

    /// Record `index` (1-based) of this document or line.
    fn record(self, index: usize) -> Self {
        Self {
            record: Some(index),
            ..self
        }
    }

    /// The place of a document's only record: the line when it is a line,
    /// record 1 when it is a whole file.
    fn single_record(self) -> Self {
        if self.line.is_some() {
            self
        } else {
            self.record(1)
        }
    }
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(record) = self.record {
            write!(f, " record {record}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Shape<'a> {
    #[serde(rename = "Records", borrow, default)]
    records: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    dynamodb: Option<IgnoredAny>,
    #[serde(default)]
    kinesis: Option<IgnoredAny>,
    #[serde(borrow, default)]
    record: Option<&'a RawValue>,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    op: Option<IgnoredAny>,
    #[serde(default)]
    position: Option<IgnoredAny>,
}

/// `text` as a JSON value for a dead letter: on one line (see
/// [`one_line`]) when it is JSON, else as a JSON string.
fn as_raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(one_line(text)).unwrap_or_else(|_| {
        let quoted = serde_json::to_string(text).unwrap_or_else(|_| "null".to_owned());
        RawValue::from_string(quoted).unwrap_or_else(|_| Box::<RawValue>::default())
    })
}

/// JSON text without the whitespace between its tokens when it spans
/// lines (a record of a pretty-printed document), so that its dead letter
/// stays one line; the text is otherwise kept as it is, every number's
/// digits included. Whitespace inside strings is kept (JSON strings hold no
/// raw line breaks).
fn one_line(text: &str) -> String {
    if !text.contains(['\n', '\r']) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
        } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        } else {
            in_string = c == '"';
        }
        out.push(c);
    }
    out
}

/// An entry for input that is not what it should be, with no keys.
fn bad(raw: &str, at: Origin<'_>, reason: impl fmt::Display) -> Entry {
    Entry::Bad {
        raw: as_raw(raw),
        reason: format!("{at}: {reason}"),
        keys: None,
    }
}

/// The shape of the last line a file held: its next line is tried as the
/// same shape first, which saves sniffing every line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LineShape {
    Unknown,
    /// One change record (of either format) per line.
    Record,
    /// One change event (as the jsonl sink writes it) per line.
    EventLine,
}

/// Decodes one line, trying the previous line's shape first; falls back to
/// [`decode_document`] (which names what is wrong) when that fails.
fn decode_line(
    text: &str,
    at: Origin<'_>,
    records: &mut RecordDecoder,
    last: &mut LineShape,
    out: &mut Vec<Entry>,
) {
    let fast = match *last {
        LineShape::Record => records.decode(text).ok(),
        LineShape::EventLine => decode_event_line(text).ok(),
        LineShape::Unknown => None,
    };
    match fast {
        Some(event) => out.push(Entry::Event(Box::new(event))),
        None => *last = decode_document(text, at, records, out),
    }
}

/// Decodes one JSON document (a line, or a whole file) into entries; returns
/// its shape when it is one change per document.
fn decode_document(
    text: &str,
    at: Origin<'_>,
    records: &mut RecordDecoder,
    out: &mut Vec<Entry>,
) -> LineShape {
    let shape: Shape<'_> = match serde_json::from_str(text) {
        Ok(shape) => shape,
        Err(err) => {
            out.push(bad(text, at, format_args!("not JSON: {err}")));
            return LineShape::Unknown;
        }
    };
    if let Some(list) = shape.records {
        for (index, raw) in list.iter().enumerate() {
            out.push(record_entry(raw.get(), at.record(index + 1), records));
        }
    } else if shape.dynamodb.is_some() || shape.kinesis.is_some() {
        out.push(record_entry(text, at.single_record(), records));
        return LineShape::Record;
    } else if shape.op.is_some() && shape.position.is_some() {
        // A change event as the jsonl sink writes it.
        out.push(match decode_event_line(text) {
            Ok(event) => Entry::Event(Box::new(event)),
            Err(err) => bad(text, at, err),
        });
        return LineShape::EventLine;
    } else if let (Some(raw), Some(stage)) = (shape.record, shape.stage.as_deref()) {
        out.push(dead_letter_entry(raw.get(), stage, at, records));
    } else {
        out.push(bad(
            text,
            at,
            "neither a stream record, a GetRecords page or Lambda event, nor a dead letter",
        ));
    }
    LineShape::Unknown
}

/// A dead letter's record: a raw change record (from decoding) or a change
/// event (from a sink, stage `sink:…`).
fn dead_letter_entry(raw: &str, stage: &str, at: Origin<'_>, records: &mut RecordDecoder) -> Entry {
    if !stage.starts_with("sink:") {
        return record_entry(raw, at, records);
    }
    match decode_event_line(raw) {
        Ok(event) => Entry::Event(Box::new(event)),
        Err(err) => bad(raw, at, err),
    }
}

/// One change record of either format: its change, or why it is rejected
/// (with its keys when they could be read).
fn record_entry(raw: &str, at: Origin<'_>, records: &mut RecordDecoder) -> Entry {
    match records.decode(raw) {
        Ok(event) => Entry::Event(Box::new(event)),
        Err(rejected) => Entry::Bad {
            raw: as_raw(raw),
            reason: format!("{at}: {}", rejected.reason),
            keys: rejected.keys,
        },
    }
}

/// The first line with content (without a UTF-8 byte-order mark) and its
/// number, or `None` when the file holds only blank lines.
fn first_content_line(
    reader: &mut impl BufRead,
    path: &Path,
) -> Result<Option<(String, usize)>, ReplayError> {
    let (mut line, mut number) = (String::new(), 0);
    loop {
        number += 1;
        line.clear();
        let read = reader.read_line(&mut line).map_err(ReplayError::io(path))?;
        if read == 0 {
            return Ok(None);
        }
        if number == 1 {
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_owned();
            }
        }
        if !line.trim().is_empty() {
            return Ok(Some((line, number)));
        }
    }
}

/// True when `line` opens a multi-line JSON document (a pretty-printed
/// Lambda event saved from a console): it starts like JSON but ends before
/// the value does.
fn starts_document(line: &str) -> bool {
    let text = line.trim();
    (text.starts_with('{') || text.starts_with('['))
        && serde_json::from_str::<IgnoredAny>(text)
            .err()
            .is_some_and(|err| err.is_eof())
}

/// Reads a replay file in batches of about `batch` entries, calling `each`
/// with every batch; an I/O error, or an error `each` returns (which may
/// be the caller's own way to stop early), stops it.
pub fn read_file<E: From<ReplayError>>(
    path: &Path,
    table: &Arc<str>,
    batch: usize,
    mut each: impl FnMut(Vec<Entry>) -> Result<(), E>,
) -> Result<(), E> {
    let shard: Arc<str> = Arc::from(format!("replay:{}", path.display()));
    let mut records = RecordDecoder::new(table, &shard);
    let file = std::fs::File::open(path).map_err(ReplayError::io(path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let Some((first, number)) = first_content_line(&mut reader, path)? else {
        return Ok(());
    };
    if starts_document(&first) {
        // Blank lines kept, so that JSON errors give the file's line numbers.
        let mut text = "\n".repeat(number - 1) + &first;
        reader
            .read_to_string(&mut text)
            .map_err(ReplayError::io(path))?;
        let mut out = Vec::new();
        decode_document(&text, Origin::file(path), &mut records, &mut out);
        return each(out);
    }
    let lines = Lines { path, batch };
    lines.read(reader, first, number, &mut records, &mut each)
}

/// A file read as one JSON document per line.
struct Lines<'a> {
    path: &'a Path,
    batch: usize,
}

impl Lines<'_> {
    /// Decodes `first` (line `number`) and every line after it.
    fn read<E: From<ReplayError>>(
        &self,
        mut reader: impl BufRead,
        first: String,
        mut number: usize,
        records: &mut RecordDecoder,
        each: &mut impl FnMut(Vec<Entry>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut out = Vec::with_capacity(self.batch);
        let mut line = first;
        let mut last = LineShape::Unknown;
        while !line.is_empty() {
            let text = line.trim_end_matches(['\n', '\r']);
            if !text.trim().is_empty() {
                let at = Origin::line(self.path, number);
                decode_line(text, at, records, &mut last, &mut out);
            }
            if out.len() >= self.batch {
                each(std::mem::replace(&mut out, Vec::with_capacity(self.batch)))?;
            }
            line.clear();
            number += 1;
            reader
                .read_line(&mut line)
                .map_err(ReplayError::io(self.path))?;
        }
        if !out.is_empty() {
            each(out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"eventID":"1","eventName":"INSERT","eventSource":"aws:dynamodb","awsRegion":"us-east-1","dynamodb":{"Keys":{"pk":{"S":"a"}},"NewImage":{"pk":{"S":"a"},"n":{"N":"1.50"}},"SequenceNumber":"000000000000000000105","SizeBytes":10,"StreamViewType":"NEW_AND_OLD_IMAGES"}}"#;

    fn entries(text: &str) -> Vec<Entry> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("input");
        std::fs::write(&path, text).expect("write");
        let mut all = Vec::new();
        read_file(&path, &Arc::from("orders"), 2, |batch| {
            all.extend(batch);
            Ok::<(), ReplayError>(())
        })
        .expect("read");
        all
    }

    #[test]
    fn every_shape_is_read() {
        let page = format!("{{\"Records\":[{RECORD},{RECORD}],\"NextShardIterator\":null}}");
        let letter = format!(
            "{{\"time\":\"t\",\"table\":\"orders\",\"stage\":\"decode\",\"shard\":\"s\",\"sequence\":null,\"error\":\"e\",\"record\":{RECORD}}}"
        );
        let text = format!("{RECORD}\n\n{page}\n{letter}\nnot json\n{{\"other\":1}}\n");
        let all = entries(&text);
        let events = all.iter().filter(|e| matches!(e, Entry::Event(_))).count();
        assert_eq!(events, 4);
        let reasons: Vec<&String> = all
            .iter()
            .filter_map(|e| match e {
                Entry::Bad { reason, .. } => Some(reason),
                Entry::Event(_) => None,
            })
            .collect();
        assert_eq!(reasons.len(), 2);
        assert!(reasons[0].contains("line 5: not JSON"), "{reasons:?}");
        assert!(reasons[1].contains("line 6: neither"), "{reasons:?}");
    }

    #[test]
    fn a_pretty_printed_lambda_event_is_one_document() {
        let text = format!("{{\n  \"Records\": [\n    {RECORD}\n  ]\n}}\n");
        let all = entries(&text);
        assert_eq!(all.len(), 1);
        let Entry::Event(event) = &all[0] else {
            panic!("a decoded event");
        };
        assert_eq!(event.version().digits(), "105");
    }

    fn reasons(all: &[Entry]) -> Vec<&str> {
        all.iter()
            .filter_map(|e| match e {
                Entry::Bad { reason, .. } => Some(reason.as_str()),
                Entry::Event(_) => None,
            })
            .collect()
    }

    fn events(all: &[Entry]) -> usize {
        all.iter().filter(|e| matches!(e, Entry::Event(_))).count()
    }

    #[test]
    fn a_byte_order_mark_and_leading_blank_lines_are_skipped() {
        let pretty = format!("\u{feff}\r\n\n  \n{{\n  \"Records\": [\n    {RECORD}\n  ]\n}}");
        assert_eq!(events(&entries(&pretty)), 1);
        let lines = format!("\u{feff}{RECORD}\n\n{RECORD}\n");
        let all = entries(&lines);
        assert_eq!(events(&all), 2, "{:?}", reasons(&all));
        let blank_first = format!("\n\n{{\n\"Records\":[{RECORD},{{\"x\":1}}]}}\n");
        let all = entries(&blank_first);
        assert_eq!(events(&all), 1);
        // JSON errors count the skipped lines.
        assert!(
            reasons(&all)[0].contains("input record 2: "),
            "{:?}",
            reasons(&all)
        );
        let truncated = "\n{\n\"Records\": [\n";
        let all = entries(truncated);
        assert!(
            reasons(&all)[0].contains("at line 4"),
            "{:?}",
            reasons(&all)
        );
    }

    #[test]
    fn a_document_is_recognised_by_its_unfinished_first_line() {
        let text = format!("{{\"Records\": [\n  {RECORD}\n]}}\n");
        assert_eq!(events(&entries(&text)), 1);
        let record = format!("{{\"eventID\":\"1\",\n{}", &RECORD[15..]);
        assert_eq!(events(&entries(&record)), 1);
        assert!(starts_document(" {\r\n") && starts_document("[{\"a\":"));
        assert!(!starts_document("{}") && !starts_document("{\"a\":1}}") && !starts_document("x{"));
    }

    #[test]
    fn rejected_records_are_named_by_file_line_and_index() {
        let bad = RECORD.replace("\"1.50\"", "\"cheap\"");
        let page = format!("{{\"Records\":[{RECORD},{bad}]}}\n{bad}\n");
        let all = entries(&page);
        let reasons = reasons(&all);
        assert!(
            reasons[0].contains("input line 1 record 2: record 1 (sequence 000000000000000000105)"),
            "{reasons:?}"
        );
        assert!(reasons[0].contains("dynamodb.NewImage.n"), "{reasons:?}");
        assert!(reasons[1].contains("input line 2: record 1"), "{reasons:?}");
        let document = format!("{{\n\"Records\":[{RECORD},\n{bad}]}}");
        assert!(reasons_of(&document)[0].contains("input record 2: "));
        let single = format!("{{\n{}", &bad[1..]);
        assert!(reasons_of(&single)[0].contains("input record 1: "));
    }

    fn reasons_of(text: &str) -> Vec<String> {
        reasons(&entries(text))
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_bad_record_keeps_its_keys_and_its_dead_letter_one_line() {
        let bad = RECORD
            .replace("\"1.50\"", "\"cheap\"")
            .replace(",", ",\n  ");
        let all = entries(&format!("{{\n\"Records\":[{bad}]}}"));
        let Entry::Bad { raw, keys, .. } = &all[0] else {
            panic!("a rejected record");
        };
        assert_eq!(keys.as_ref().map(|k| k.contains_key("pk")), Some(true));
        assert!(!raw.get().contains('\n'), "{}", raw.get());
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(raw.get()).expect("JSON"),
            serde_json::from_str::<serde_json::Value>(&bad).expect("JSON")
        );
    }

    #[test]
    fn one_line_drops_only_whitespace_between_tokens() {
        let text = "{\n  \"a b\" : \"x\\\" \\\\ y \",\r\n  \"n\": [1.50E+3, {}]\n}";
        assert_eq!(one_line(text), r#"{"a b":"x\" \\ y ","n":[1.50E+3,{}]}"#);
        assert_eq!(one_line("{ \"a\": 1 }"), "{ \"a\": 1 }");
    }

    #[test]
    fn kinesis_format_records_of_the_table_are_replayed_others_rejected() {
        let kinesis = r#"{"awsRegion":"eu-west-1","eventID":"e1","eventName":"INSERT","userIdentity":null,"recordFormat":"application/json","tableName":"orders","dynamodb":{"ApproximateCreationDateTime":1731924555370,"Keys":{"id":{"S":"a"}},"NewImage":{"id":{"S":"a"}},"SizeBytes":60},"eventSource":"aws:dynamodb"}"#;
        let other = kinesis.replace("\"orders\"", "\"customers\"");
        let all = entries(&format!("{kinesis}\n{other}\n{kinesis}\n"));
        let Entry::Event(event) = &all[0] else {
            panic!("a change");
        };
        assert_eq!(event.position.sequence.as_str(), "1");
        let Entry::Bad { reason, keys, .. } = &all[1] else {
            panic!("a rejected record");
        };
        assert!(
            reason.ends_with(
                "input line 2: Kinesis-format record of table \"customers\", not of table \"orders\""
            ),
            "{reason}"
        );
        assert_eq!(keys, &None);
        let Entry::Event(again) = &all[2] else {
            panic!("a change");
        };
        assert!(again.position.sequence > event.position.sequence);
        assert_eq!(again.version(), event.version());
    }
}
