//! DynamoDB Streams records as read (raw JSON, images untouched) and their
//! rendering in the record format DynamoDB writes to a Kinesis streaming
//! destination: no SequenceNumber, ApproximateCreationDateTime in
//! microseconds, plus `tableName` and `recordFormat`.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Kinesis's limit on a partition key, in characters.
const MAX_PARTITION_KEY_CHARS: usize = 256;

/// A GetRecords response of DynamoDB Streams.
#[derive(Debug, Deserialize)]
pub struct StreamPage {
    /// The records, in stream order.
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
    /// Where to read next; absent once a closed shard is read to its end.
    #[serde(rename = "NextShardIterator", default)]
    pub next_shard_iterator: Option<String>,
}

/// One DynamoDB Streams record, with its key and images kept as raw JSON.
#[derive(Debug, Deserialize)]
pub struct StreamRecord {
    #[serde(rename = "awsRegion", default)]
    aws_region: String,
    #[serde(rename = "eventID", default)]
    event_id: String,
    #[serde(rename = "eventName", default)]
    event_name: String,
    #[serde(rename = "userIdentity", default)]
    user_identity: Option<StreamIdentity>,
    /// The change itself.
    pub dynamodb: StreamChange,
}

#[derive(Debug, Deserialize)]
struct StreamIdentity {
    #[serde(rename = "PrincipalId", default)]
    principal_id: String,
    #[serde(rename = "Type", default)]
    kind: String,
}

/// The `dynamodb` part of a stream record.
#[derive(Debug, Deserialize)]
pub struct StreamChange {
    #[serde(rename = "Keys")]
    keys: Box<RawValue>,
    #[serde(rename = "NewImage", default)]
    new_image: Option<Box<RawValue>>,
    #[serde(rename = "OldImage", default)]
    old_image: Option<Box<RawValue>>,
    /// The record's sequence number in its shard.
    #[serde(rename = "SequenceNumber")]
    pub sequence_number: String,
    #[serde(rename = "SizeBytes", default)]
    size_bytes: u64,
}

#[derive(Serialize)]
struct KinesisRecord<'a> {
    #[serde(rename = "awsRegion")]
    aws_region: &'a str,
    #[serde(rename = "eventID")]
    event_id: &'a str,
    #[serde(rename = "eventName")]
    event_name: &'a str,
    #[serde(rename = "userIdentity", skip_serializing_if = "Option::is_none")]
    user_identity: Option<KinesisIdentity<'a>>,
    #[serde(rename = "recordFormat")]
    record_format: &'static str,
    #[serde(rename = "tableName")]
    table_name: &'a str,
    dynamodb: KinesisChange<'a>,
    #[serde(rename = "eventSource")]
    event_source: &'static str,
}

#[derive(Serialize)]
struct KinesisIdentity<'a> {
    #[serde(rename = "principalId")]
    principal_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
struct KinesisChange<'a> {
    #[serde(rename = "ApproximateCreationDateTime")]
    approximate_creation_date_time: u64,
    #[serde(rename = "ApproximateCreationDateTimePrecision")]
    precision: &'static str,
    #[serde(rename = "Keys")]
    keys: &'a RawValue,
    #[serde(rename = "NewImage", skip_serializing_if = "Option::is_none")]
    new_image: Option<&'a RawValue>,
    #[serde(rename = "OldImage", skip_serializing_if = "Option::is_none")]
    old_image: Option<&'a RawValue>,
    #[serde(rename = "SizeBytes")]
    size_bytes: u64,
}

impl StreamRecord {
    /// The change's name: INSERT, MODIFY or REMOVE. DynamoDB Local names a
    /// TTL delete with an unknown event name; a change with only an old
    /// image is a removal, which is what AWS calls it.
    fn event_name(&self) -> &str {
        match self.event_name.as_str() {
            "INSERT" | "MODIFY" | "REMOVE" => &self.event_name,
            _ if self.dynamodb.new_image.is_none() && self.dynamodb.old_image.is_some() => "REMOVE",
            other => other,
        }
    }

    /// The record as DynamoDB writes it to a Kinesis stream, stamped with
    /// `micros` (microseconds since the epoch) and named for `table`.
    pub fn to_kinesis_json(&self, table: &str, micros: u64) -> Result<Vec<u8>, String> {
        let change = &self.dynamodb;
        let record = KinesisRecord {
            aws_region: &self.aws_region,
            event_id: &self.event_id,
            event_name: self.event_name(),
            user_identity: self.user_identity.as_ref().map(|id| KinesisIdentity {
                principal_id: &id.principal_id,
                kind: &id.kind,
            }),
            record_format: "application/json",
            table_name: table,
            dynamodb: KinesisChange {
                approximate_creation_date_time: micros,
                precision: "MICROSECOND",
                keys: &change.keys,
                new_image: change.new_image.as_deref(),
                old_image: change.old_image.as_deref(),
                size_bytes: change.size_bytes,
            },
            event_source: "aws:dynamodb",
        };
        serde_json::to_vec(&record).map_err(|e| format!("cannot encode a Kinesis record: {e}"))
    }

    /// The item's key attributes serialised with sorted names, so that every
    /// change of one item lands on one shard. Keys longer than Kinesis
    /// allows are shortened and suffixed with a hash of the whole.
    pub fn partition_key(&self) -> Result<String, String> {
        let keys: BTreeMap<String, Box<RawValue>> = serde_json::from_str(self.dynamodb.keys.get())
            .map_err(|e| format!("stream record Keys are not an object: {e}"))?;
        let text = serde_json::to_string(&keys)
            .map_err(|e| format!("cannot encode a partition key: {e}"))?;
        if text.chars().count() <= MAX_PARTITION_KEY_CHARS {
            return Ok(text);
        }
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        let prefix: String = text.chars().take(MAX_PARTITION_KEY_CHARS - 17).collect();
        Ok(format!("{prefix}#{:016x}", hasher.finish()))
    }
}

/// Parses a GetRecords response body.
pub fn parse_page(body: &[u8]) -> Result<StreamPage, String> {
    serde_json::from_slice(body).map_err(|e| {
        let start = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        format!("cannot parse a GetRecords response ({e}): {start}")
    })
}
