//! The Kinesis API calls the core needs: ListShards, GetShardIterator and
//! GetRecords (AWS SDK for Rust), and routing records to followed tables.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::{ChildShard, ShardIteratorType};

use super::page::KinesisPage;
use crate::decode::kinesis::{decode_kinesis_record, KinesisRecord, TimePrecision};
use crate::model::SequenceNumber;
use crate::source::retry::RetryPolicy;
use crate::source::shard::{Decoded, ShardInfo, ShardSource, ShardStart};
use crate::source::SourceError;

/// Kinesis allows 5 GetRecords calls per second per shard.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// One Kinesis data stream and the tables it carries that are followed.
pub struct KinesisShards {
    client: aws_sdk_kinesis::Client,
    /// The stream as configured: a name, or an ARN.
    stream: Arc<str>,
    /// `tableName` → the table's shared name.
    tables: HashMap<String, Arc<str>>,
    /// Tables already warned about MILLISECOND precision.
    warned: Mutex<HashSet<Arc<str>>>,
    /// How ListShards is retried through throttling and server errors.
    retry: RetryPolicy,
}

impl KinesisShards {
    /// The stream `stream` (name or ARN) read through `client`, routing
    /// records of `tables` (their names) and reporting every other table;
    /// ListShards is retried by `retry`.
    pub fn new(
        client: aws_sdk_kinesis::Client,
        stream: &str,
        tables: &[String],
        retry: RetryPolicy,
    ) -> Self {
        Self {
            client,
            stream: Arc::from(stream),
            tables: tables
                .iter()
                .map(|t| (t.clone(), Arc::from(t.as_str())))
                .collect(),
            warned: Mutex::new(HashSet::new()),
            retry,
        }
    }

    fn is_arn(&self) -> bool {
        self.stream.starts_with("arn:")
    }

    /// Warns once per table whose records carry only MILLISECOND precision.
    fn warn_precision(&self, table: &Arc<str>) {
        let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        if warned.insert(Arc::clone(table)) {
            tracing::warn!(
                table = %table,
                stream = %self.stream,
                "the table's Kinesis records carry ApproximateCreationDateTime in MILLISECOND precision: two \
                 changes of one item within the same millisecond cannot be ordered. Set the destination's \
                 precision to MICROSECOND (aws dynamodb update-kinesis-streaming-destination \
                 --update-kinesis-streaming-configuration ApproximateCreationDateTimePrecision=MICROSECOND)"
            );
        }
    }
}

fn shard_info(
    id: String,
    parent: Option<String>,
    adjacent: Option<String>,
    closed: bool,
) -> ShardInfo {
    ShardInfo {
        id,
        parents: parent.into_iter().chain(adjacent).collect(),
        closed,
    }
}

fn child_info(child: &ChildShard) -> ShardInfo {
    ShardInfo {
        id: child.shard_id.clone(),
        parents: child.parent_shards.clone(),
        closed: false,
    }
}

impl ShardSource for KinesisShards {
    type Page = KinesisPage;

    fn stream_id(&self) -> &Arc<str> {
        &self.stream
    }

    fn versions_follow_positions(&self) -> bool {
        false
    }

    fn min_poll_interval(&self) -> Duration {
        MIN_POLL_INTERVAL
    }

    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
        let mut shards = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page_token = token.take();
            let output = self
                .retry
                .run(|| async {
                    let request = self.client.list_shards();
                    // With a NextToken the stream must not be named again.
                    let request = match page_token.clone() {
                        Some(next) => request.next_token(next),
                        None if self.is_arn() => request.stream_arn(&*self.stream),
                        None => request.stream_name(&*self.stream),
                    };
                    request
                        .send()
                        .await
                        .map_err(|err| SourceError::from_sdk("ListShards", err))
                })
                .await?;
            for shard in output.shards.unwrap_or_default() {
                let closed = shard
                    .sequence_number_range
                    .is_some_and(|range| range.ending_sequence_number.is_some());
                shards.push(shard_info(
                    shard.shard_id,
                    shard.parent_shard_id,
                    shard.adjacent_parent_shard_id,
                    closed,
                ));
            }
            match output.next_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        // kinesalite ignores paging and may repeat shards: keep the first of each.
        let mut seen = HashSet::new();
        shards.retain(|s| seen.insert(s.id.clone()));
        Ok(shards)
    }

    async fn shard_iterator(
        &self,
        shard: &str,
        start: &ShardStart,
    ) -> Result<Option<String>, SourceError> {
        let request = self.client.get_shard_iterator().shard_id(shard);
        let request = if self.is_arn() {
            request.stream_arn(&*self.stream)
        } else {
            request.stream_name(&*self.stream)
        };
        let request = match start {
            ShardStart::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            ShardStart::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            ShardStart::After(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(sequence.as_str()),
            ShardStart::At(sequence) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(sequence.as_str()),
            ShardStart::AtTimestamp(ms) => request
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_millis(*ms)),
        };
        let output = request
            .send()
            .await
            .map_err(|err| SourceError::from_sdk("GetShardIterator", err))?;
        Ok(output.shard_iterator)
    }

    async fn get_records(&self, iterator: &str, limit: u32) -> Result<KinesisPage, SourceError> {
        let output = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|err| SourceError::from_sdk("GetRecords", err))?;
        Ok(KinesisPage {
            children: output.child_shards().iter().map(child_info).collect(),
            millis_behind: output.millis_behind_latest,
            next: output.next_shard_iterator,
            records: output.records,
        })
    }

    fn decode(&self, page: &KinesisPage, shard: &Arc<str>) -> Vec<Decoded> {
        let followed = |name: &str| self.tables.get(name).cloned();
        page.records
            .iter()
            .map(|record| {
                let sequence = &record.sequence_number;
                let position = SequenceNumber::parse(sequence).ok();
                match decode_kinesis_record(record.data.as_ref(), sequence, shard, followed) {
                    Ok(KinesisRecord::Change { event, precision }) => {
                        if precision == TimePrecision::Millisecond {
                            self.warn_precision(&event.table);
                        }
                        Decoded::Event(*event)
                    }
                    Ok(KinesisRecord::OtherTable(table)) => match position {
                        Some(position) => Decoded::OtherTable { table, position },
                        None => Decoded::Failed {
                            position: None,
                            table: Some(table),
                            error: bad_sequence(sequence),
                        },
                    },
                    Err(failure) => Decoded::Failed {
                        position,
                        table: failure.table,
                        error: failure.error,
                    },
                }
            })
            .collect()
    }
}

fn bad_sequence(sequence: &str) -> crate::decode::DecodeError {
    crate::decode::DecodeError::Value {
        path: "SequenceNumber".into(),
        message: format!(
            "Kinesis sequence number {sequence:?} is not a decimal number of at most 129 digits"
        ),
    }
}
