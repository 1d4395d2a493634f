//! A GetRecords response page (or a Lambda event): records kept raw until decoded one by one.

use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::DecodeError;
use crate::model::json::cursor::Cursor;

/// The records of one GetRecords response, each still raw JSON (a span of
/// the response body) so that one malformed record can be dead-lettered
/// without losing its neighbours.
#[derive(Debug)]
pub struct RecordsPage {
    body: String,
    spans: Vec<Range<usize>>,
    /// Where to read next; `None` once a closed shard has been read to its end.
    pub next_shard_iterator: Option<String>,
}

impl RecordsPage {
    /// The number of records.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when the page holds no record.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The records' raw JSON, in stream order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = &str> {
        self.spans.iter().map(|span| &self.body[span.clone()])
    }

    /// The raw JSON of record `index`, if there is one.
    pub fn record(&self, index: usize) -> Option<&str> {
        self.body.get(self.spans.get(index)?.clone())
    }
}

/// The serde form of a page, for bodies the fast walk leaves alone.
#[derive(Deserialize)]
struct WirePage<'a> {
    #[serde(rename = "Records", borrow, default)]
    records: Vec<&'a RawValue>,
    #[serde(rename = "NextShardIterator", default)]
    next_shard_iterator: Option<String>,
}

/// Parses a GetRecords response body (or a Lambda DynamoDB event, whose
/// `Records` array has the same record shape). The body is kept whole; the
/// records are spans of it.
pub fn parse_page(body: Vec<u8>) -> Result<RecordsPage, DecodeError> {
    let body = String::from_utf8(body)
        .map_err(|err| DecodeError::Page(format!("the body is not UTF-8: {err}")))?;
    if let Some((spans, next_shard_iterator)) = walk(&body) {
        return Ok(RecordsPage {
            body,
            spans,
            next_shard_iterator,
        });
    }
    let wire: WirePage<'_> =
        serde_json::from_str(&body).map_err(|err| DecodeError::Page(err.to_string()))?;
    // Each raw record borrows from `body`: its span is its offset in it.
    let base = body.as_ptr() as usize;
    let spans = wire
        .records
        .iter()
        .map(|raw| {
            let start = raw.get().as_ptr() as usize - base;
            start..start + raw.get().len()
        })
        .collect();
    let next_shard_iterator = wire.next_shard_iterator;
    Ok(RecordsPage {
        body,
        spans,
        next_shard_iterator,
    })
}

/// The usual page shape in one checked walk: the `Records` spans and an
/// escape-free `NextShardIterator`; `None` sends the body to serde.
fn walk(body: &str) -> Option<(Vec<Range<usize>>, Option<String>)> {
    let mut cursor = Cursor::new(body);
    let (mut spans, mut next, mut seen_records, mut seen_next) = (Vec::new(), None, false, false);
    cursor.eat(b'{')?;
    if !cursor.eat_if(b'}') {
        loop {
            let name = cursor.string()?.plain()?;
            cursor.eat(b':')?;
            match name {
                "Records" if !seen_records => {
                    seen_records = true;
                    cursor.eat(b'[')?;
                    if !cursor.eat_if(b']') {
                        loop {
                            let start = cursor.position_of_next()?;
                            cursor.skip_value(2)?;
                            spans.push(start..cursor.position());
                            if cursor.next_or_close(b']')? {
                                break;
                            }
                        }
                    }
                }
                "NextShardIterator" if !seen_next => {
                    seen_next = true;
                    if cursor.peek()? == b'n' {
                        cursor.literal("null")?;
                    } else {
                        next = Some(cursor.string()?.plain()?.to_owned());
                    }
                }
                "Records" | "NextShardIterator" => return None,
                _ => cursor.skip_value(1)?,
            }
            if cursor.next_or_close(b'}')? {
                break;
            }
        }
    }
    cursor.at_end().then_some((spans, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<RecordsPage, DecodeError> {
        parse_page(body.as_bytes().to_vec())
    }

    #[test]
    fn reads_records_and_iterator() {
        let page =
            parse(r#"{"Records":[{"a":1}, {"b":[2,"]"]}],"NextShardIterator":"it"}"#).unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page.record(1), Some(r#"{"b":[2,"]"]}"#));
        assert_eq!(page.next_shard_iterator.as_deref(), Some("it"));
    }

    #[test]
    fn closed_shard_has_no_iterator() {
        for body in [
            r#"{"Records":[]}"#,
            r#"{"Records":[],"NextShardIterator":null}"#,
        ] {
            let page = parse(body).unwrap();
            assert!(page.is_empty());
            assert!(page.next_shard_iterator.is_none());
        }
    }

    #[test]
    fn unusual_bodies_go_through_serde() {
        let page = parse(r#"{"NextShardIterator":"a\/b","Records":[{"x":1}],"Other":{}}"#).unwrap();
        assert_eq!(page.next_shard_iterator.as_deref(), Some("a/b"));
        assert_eq!(page.records().collect::<Vec<_>>(), [r#"{"x":1}"#]);
    }

    #[test]
    fn rejects_non_json() {
        assert!(matches!(parse("<html>"), Err(DecodeError::Page(_))));
        assert!(matches!(
            parse(r#"{"Records":[{"a":}]}"#),
            Err(DecodeError::Page(_))
        ));
        assert!(matches!(
            parse_page(vec![0xff, 0xfe]),
            Err(DecodeError::Page(_))
        ));
    }
}
