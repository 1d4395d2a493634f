//! A GetRecords response page (or a Lambda event): records kept raw until decoded one by one.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::DecodeError;

/// The records of one GetRecords response, each still raw JSON so that one
/// malformed record can be dead-lettered without losing its neighbours.
#[derive(Debug, Deserialize)]
pub struct RecordsPage {
    /// The page's records, in stream order.
    #[serde(rename = "Records", default)]
    pub records: Vec<Box<RawValue>>,
    /// Where to read next; `None` once a closed shard has been read to its end.
    #[serde(rename = "NextShardIterator", default)]
    pub next_shard_iterator: Option<String>,
}

/// Parses a GetRecords response body (or a Lambda DynamoDB event, whose
/// `Records` array has the same record shape).
pub fn parse_page(body: &[u8]) -> Result<RecordsPage, DecodeError> {
    serde_json::from_slice(body).map_err(|err| DecodeError::Page(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_and_iterator() {
        let page =
            parse_page(br#"{"Records":[{"a":1},{"b":2}],"NextShardIterator":"it"}"#).unwrap();
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.records[1].get(), r#"{"b":2}"#);
        assert_eq!(page.next_shard_iterator.as_deref(), Some("it"));
    }

    #[test]
    fn closed_shard_has_no_iterator() {
        let page = parse_page(br#"{"Records":[]}"#).unwrap();
        assert!(page.records.is_empty());
        assert!(page.next_shard_iterator.is_none());
    }

    #[test]
    fn rejects_non_json() {
        assert!(matches!(parse_page(b"<html>"), Err(DecodeError::Page(_))));
    }
}
