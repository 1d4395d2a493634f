//! DynamoDB Streams behind the shard-source seam: one table's stream.

use std::sync::Arc;

use super::api::StreamsApi;
use crate::decode::{decode_record, DecodeError, RecordsPage};
use crate::model::SequenceNumber;
use crate::source::shard::{Decoded, ShardInfo, ShardSource, ShardStart, SourcePage};
use crate::source::SourceError;

/// One table's DynamoDB stream. Versions are the records' sequence numbers.
pub struct StreamsShards {
    api: Arc<StreamsApi>,
    stream_arn: Arc<str>,
    table: Arc<str>,
}

impl StreamsShards {
    /// The stream `stream_arn` of `table`, read through `api`.
    pub fn new(api: Arc<StreamsApi>, stream_arn: Arc<str>, table: Arc<str>) -> Self {
        Self {
            api,
            stream_arn,
            table,
        }
    }
}

#[derive(serde::Deserialize)]
struct RecordHead {
    dynamodb: StreamHead,
}

#[derive(serde::Deserialize)]
struct StreamHead {
    #[serde(rename = "SequenceNumber")]
    sequence: String,
}

impl SourcePage for RecordsPage {
    fn len(&self) -> usize {
        RecordsPage::len(self)
    }

    fn next_iterator(&self) -> Option<&str> {
        self.next_shard_iterator.as_deref()
    }

    fn raw_json(&self, index: usize) -> Option<String> {
        self.record(index).map(str::to_owned)
    }

    fn first_position(&self) -> Option<SequenceNumber> {
        let head: RecordHead = serde_json::from_str(self.record(0)?).ok()?;
        SequenceNumber::parse(&head.dynamodb.sequence).ok()
    }
}

impl ShardSource for StreamsShards {
    type Page = RecordsPage;

    fn stream_id(&self) -> &Arc<str> {
        &self.stream_arn
    }

    fn versions_follow_positions(&self) -> bool {
        true
    }

    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
        self.api.list_shards(&self.stream_arn).await
    }

    async fn shard_iterator(
        &self,
        shard: &str,
        start: &ShardStart,
    ) -> Result<Option<String>, SourceError> {
        self.api
            .shard_iterator(&self.stream_arn, shard, start)
            .await
    }

    async fn get_records(&self, iterator: &str, limit: u32) -> Result<RecordsPage, SourceError> {
        self.api.get_records(iterator, limit).await
    }

    fn decode(&self, page: &RecordsPage, shard: &Arc<str>) -> Vec<Decoded> {
        page.records()
            .map(|raw| match decode_record(raw, &self.table, shard) {
                Ok(event) => Decoded::Event(event),
                Err(error) => Decoded::Failed {
                    position: failed_position(&error),
                    table: None,
                    error,
                },
            })
            .collect()
    }
}

/// The sequence number a failed record's error names, when readable.
fn failed_position(error: &DecodeError) -> Option<SequenceNumber> {
    match error {
        DecodeError::Record { sequence, .. } => SequenceNumber::parse(sequence).ok(),
        _ => None,
    }
}
