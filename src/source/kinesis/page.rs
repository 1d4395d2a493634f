//! One Kinesis GetRecords response as a [`SourcePage`].

use base64::Engine as _;

use crate::model::SequenceNumber;
use crate::source::shard::{ShardInfo, SourcePage};

/// The records of one GetRecords call, with what the service said about
/// the shard (next iterator, children at its end, how far behind).
#[derive(Debug, Default)]
pub struct KinesisPage {
    pub(super) records: Vec<aws_sdk_kinesis::types::Record>,
    pub(super) next: Option<String>,
    pub(super) children: Vec<ShardInfo>,
    pub(super) millis_behind: Option<i64>,
}

impl SourcePage for KinesisPage {
    fn len(&self) -> usize {
        self.records.len()
    }

    fn next_iterator(&self) -> Option<&str> {
        self.next.as_deref()
    }

    fn child_shards(&self) -> &[ShardInfo] {
        &self.children
    }

    fn millis_behind(&self) -> Option<i64> {
        self.millis_behind
    }

    /// The record's data when it is JSON text; otherwise an object with the
    /// data in base64, its sequence number and partition key.
    fn raw_json(&self, index: usize) -> Option<String> {
        let record = self.records.get(index)?;
        let data = record.data.as_ref();
        if let Ok(text) = std::str::from_utf8(data) {
            if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
                return Some(text.to_owned());
            }
        }
        Some(
            serde_json::json!({
                "sequenceNumber": record.sequence_number,
                "partitionKey": record.partition_key,
                "dataBase64": base64::engine::general_purpose::STANDARD.encode(data),
            })
            .to_string(),
        )
    }

    fn first_position(&self) -> Option<SequenceNumber> {
        SequenceNumber::parse(&self.records.first()?.sequence_number).ok()
    }
}
