//! What a replay file holds, line by line: stream records (JSON Lines),
//! GetRecords pages or Lambda events (`{"Records":[…]}`, one per line or one
//! pretty-printed document per file), change events as the `jsonl` sink
//! writes them, or the engine's own dead letters.

use std::io::BufRead as _;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::decode::{decode_event_line, decode_record};
use crate::model::ChangeEvent;

/// One decoded entry of a replay file.
pub enum Entry {
    /// A change.
    Event(Box<ChangeEvent>),
    /// Something that could not be decoded: the raw JSON and why.
    Bad {
        /// The offending JSON (the line when it is not JSON at all, as a string).
        raw: Box<RawValue>,
        /// What is wrong, naming the file and line.
        reason: String,
    },
}

#[derive(Deserialize)]
struct Shape<'a> {
    #[serde(rename = "Records", borrow, default)]
    records: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    dynamodb: Option<serde::de::IgnoredAny>,
    #[serde(borrow, default)]
    record: Option<&'a RawValue>,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    op: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    position: Option<serde::de::IgnoredAny>,
}

fn as_raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap_or_else(|_| {
        let quoted = serde_json::to_string(text).unwrap_or_else(|_| "null".to_owned());
        RawValue::from_string(quoted).unwrap_or_else(|_| Box::<RawValue>::default())
    })
}

/// The shape of the last line a file held: its next line is tried as the
/// same shape first, which saves sniffing every line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LineShape {
    Unknown,
    /// One stream record per line.
    Record,
    /// One change event (as the jsonl sink writes it) per line.
    EventLine,
}

/// Decodes one line, trying the previous line's shape first; falls back to
/// [`decode_document`] (which names what is wrong) when that fails.
fn decode_line(
    text: &str,
    where_: &dyn Fn() -> String,
    table: &Arc<str>,
    shard: &Arc<str>,
    last: &mut LineShape,
    out: &mut Vec<Entry>,
) {
    let fast = match *last {
        LineShape::Record => decode_record(text, table, shard).ok(),
        LineShape::EventLine => decode_event_line(text).ok(),
        LineShape::Unknown => None,
    };
    match fast {
        Some(event) => out.push(Entry::Event(Box::new(event))),
        None => *last = decode_document(text, where_, table, shard, out),
    }
}

/// Decodes one JSON document (a line, or a whole file) into entries; returns
/// its shape when it is one change per document.
fn decode_document(
    text: &str,
    where_: &dyn Fn() -> String,
    table: &Arc<str>,
    shard: &Arc<str>,
    out: &mut Vec<Entry>,
) -> LineShape {
    let bad = |reason: String| Entry::Bad {
        raw: as_raw(text),
        reason: format!("{}: {reason}", where_()),
    };
    let shape: Shape<'_> = match serde_json::from_str(text) {
        Ok(shape) => shape,
        Err(err) => {
            out.push(bad(format!("not JSON: {err}")));
            return LineShape::Unknown;
        }
    };
    let mut record = |raw: &str| {
        out.push(match decode_record(raw, table, shard) {
            Ok(event) => Entry::Event(Box::new(event)),
            Err(err) => Entry::Bad {
                raw: as_raw(raw),
                reason: format!("{}: {err}", where_()),
            },
        });
    };
    if let Some(records) = shape.records {
        for raw in records {
            record(raw.get());
        }
    } else if shape.dynamodb.is_some() {
        record(text);
        return LineShape::Record;
    } else if shape.op.is_some() && shape.position.is_some() {
        // A change event as the jsonl sink writes it.
        out.push(match decode_event_line(text) {
            Ok(event) => Entry::Event(Box::new(event)),
            Err(err) => bad(err.to_string()),
        });
        return LineShape::EventLine;
    } else if let (Some(raw), Some(stage)) = (shape.record, shape.stage.as_deref()) {
        // A dead letter: a raw stream record (decode) or a change event (sink).
        if stage.starts_with("sink:") {
            out.push(match decode_event_line(raw.get()) {
                Ok(event) => Entry::Event(Box::new(event)),
                Err(err) => Entry::Bad {
                    raw: as_raw(raw.get()),
                    reason: format!("{}: {err}", where_()),
                },
            });
        } else {
            record(raw.get());
        }
    } else {
        out.push(bad(
            "neither a stream record, a GetRecords page or Lambda event, nor a dead letter".into(),
        ));
    }
    LineShape::Unknown
}

/// Reads a replay file in batches of about `batch` entries, calling `each`
/// with every batch; an I/O error stops it.
pub fn read_file(
    path: &Path,
    table: &Arc<str>,
    batch: usize,
    mut each: impl FnMut(Vec<Entry>) -> Result<(), String>,
) -> Result<(), String> {
    let shard: Arc<str> = Arc::from(format!("replay:{}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut first = String::new();
    reader
        .read_line(&mut first)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // A pretty-printed document (a Lambda event saved from a console): its
    // first line alone is not JSON.
    if first.trim() == "{" || first.trim() == "[" {
        let mut rest = first;
        std::io::Read::read_to_string(&mut reader, &mut rest)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut out = Vec::new();
        decode_document(
            &rest,
            &|| path.display().to_string(),
            table,
            &shard,
            &mut out,
        );
        return each(out);
    }
    let mut out = Vec::with_capacity(batch);
    let mut line = first;
    let mut number = 1usize;
    let mut last = LineShape::Unknown;
    loop {
        if line.is_empty() {
            break;
        }
        let text = line.trim_end_matches(['\n', '\r']);
        if !text.trim().is_empty() {
            let where_ = || format!("{} line {number}", path.display());
            decode_line(text, &where_, table, &shard, &mut last, &mut out);
        }
        if out.len() >= batch {
            each(std::mem::replace(&mut out, Vec::with_capacity(batch)))?;
        }
        line.clear();
        number += 1;
        reader
            .read_line(&mut line)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if !out.is_empty() {
        each(out)?;
    }
    Ok(())
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
            Ok(())
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
}
