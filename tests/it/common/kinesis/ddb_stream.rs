//! Follows a table's DynamoDB stream from the trim horizon, parents read to
//! their end before their children. GetRecords goes out as a signed raw
//! request so that images stay exactly as DynamoDB wrote them (the SDK
//! rejects a whole page holding the untagged `{}` DynamoDB Local writes for
//! nested empty maps).

use std::collections::HashSet;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sdk_dynamodbstreams::types::{Shard, ShardIteratorType};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::record_format::{parse_page, StreamPage, StreamRecord};

/// Records asked for per GetRecords call (DynamoDB's maximum).
const PAGE_LIMIT: u32 = 1000;
const REGION: &str = "us-east-1";

/// Where reading one shard stands.
struct Cursor {
    shard_id: String,
    iterator: Option<String>,
    last_sequence: Option<String>,
}

/// Why a GetRecords call failed.
enum ReadError {
    /// The iterator is too old (ExpiredIteratorException), or points before
    /// the oldest record (TrimmedDataAccessException: DynamoDB Local says so
    /// of a trim-horizon iterator taken while the shard was still empty once
    /// another table has written): get a new one after the last record read.
    Stale,
    /// Anything else, described.
    Other(String),
}

/// Reads a table's stream shard by shard, following the shard lineage.
pub struct StreamFollower {
    streams: aws_sdk_dynamodbstreams::Client,
    http: reqwest::Client,
    endpoint: String,
    stream_arn: String,
    finished: HashSet<String>,
    cursors: Vec<Cursor>,
}

fn credentials() -> Credentials {
    Credentials::new("local", "local", None, None, "tests")
}

fn streams_client(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodbstreams::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(credentials())
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(credentials())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// The table's current stream ARN.
async fn latest_stream_arn(endpoint: &str, table: &str) -> Result<String, String> {
    let output = dynamodb_client(endpoint)
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| format!("describe table {table}: {e:?}"))?;
    output
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| format!("table {table} has no stream"))
}

impl StreamFollower {
    /// Follows the stream of `table` on the DynamoDB endpoint `endpoint`.
    pub async fn connect(endpoint: &str, table: &str) -> Result<Self, String> {
        let stream_arn = latest_stream_arn(endpoint, table).await?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Self {
            streams: streams_client(endpoint),
            http,
            endpoint: endpoint.to_owned(),
            stream_arn,
            finished: HashSet::new(),
            cursors: Vec::new(),
        })
    }

    /// Reads one page from every shard being read (starting the shards whose
    /// parents are done) and returns the records, each shard's in order. On
    /// a failure it stops, returning what it read before and the error; the
    /// failed shard is read again from the same place on the next poll.
    pub async fn poll(&mut self) -> (Vec<StreamRecord>, Option<String>) {
        if let Err(error) = self.start_ready_shards().await {
            return (Vec::new(), Some(error));
        }
        let mut records = Vec::new();
        let mut failure = None;
        let mut cursors = std::mem::take(&mut self.cursors);
        for cursor in &mut cursors {
            match self.read_page(cursor).await {
                Ok(page) => records.extend(page),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        for cursor in cursors {
            if cursor.iterator.is_some() {
                self.cursors.push(cursor);
            } else {
                self.finished.insert(cursor.shard_id);
            }
        }
        (records, failure)
    }

    /// Every shard of the stream (DescribeStream, all pages).
    async fn list_shards(&self) -> Result<Vec<Shard>, String> {
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let output = self
                .streams
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| format!("describe stream {}: {e:?}", self.stream_arn))?;
            let description = output
                .stream_description
                .ok_or_else(|| format!("stream {} has no description", self.stream_arn))?;
            shards.extend(description.shards.unwrap_or_default());
            match description.last_evaluated_shard_id {
                Some(last) => start = Some(last),
                None => return Ok(shards),
            }
        }
    }

    /// Starts reading, from the trim horizon, every new shard whose parent
    /// is read to its end (or gone from the stream).
    async fn start_ready_shards(&mut self) -> Result<(), String> {
        let shards = self.list_shards().await?;
        let listed: HashSet<&str> = shards.iter().filter_map(|s| s.shard_id()).collect();
        for shard in &shards {
            let Some(id) = shard.shard_id() else { continue };
            let known = self.finished.contains(id) || self.cursors.iter().any(|c| c.shard_id == id);
            let parent_done = shard
                .parent_shard_id()
                .is_none_or(|p| self.finished.contains(p) || !listed.contains(p));
            if !known && parent_done {
                let iterator = self.iterator(id, None).await?;
                self.cursors.push(Cursor {
                    shard_id: id.to_owned(),
                    iterator: Some(iterator),
                    last_sequence: None,
                });
            }
        }
        Ok(())
    }

    /// An iterator at the trim horizon, or just after `after`.
    async fn iterator(&self, shard_id: &str, after: Option<&str>) -> Result<String, String> {
        let request = self
            .streams
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard_id);
        let request = match after {
            Some(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let output = request
            .send()
            .await
            .map_err(|e| format!("shard iterator for {shard_id}: {e:?}"))?;
        output
            .shard_iterator
            .ok_or_else(|| format!("no shard iterator for {shard_id}"))
    }

    /// Reads one page at the cursor and moves it on. A stale iterator is
    /// replaced (after the last record read, or at the trim horizon) and the
    /// page read with the new one; stale twice in a row is an error.
    async fn read_page(&self, cursor: &mut Cursor) -> Result<Vec<StreamRecord>, String> {
        let Some(iterator) = cursor.iterator.clone() else {
            return Ok(Vec::new());
        };
        let page = match self.get_records(&iterator).await {
            Ok(page) => page,
            Err(ReadError::Stale) => {
                let after = cursor.last_sequence.as_deref();
                let fresh = self.iterator(&cursor.shard_id, after).await?;
                cursor.iterator = Some(fresh.clone());
                self.get_records(&fresh).await.map_err(|e| match e {
                    ReadError::Stale => format!("shard {}: new iterator stale", cursor.shard_id),
                    ReadError::Other(message) => message,
                })?
            }
            Err(ReadError::Other(message)) => return Err(message),
        };
        if let Some(last) = page.records.last() {
            cursor.last_sequence = Some(last.dynamodb.sequence_number.clone());
        }
        cursor.iterator = page.next_shard_iterator;
        Ok(page.records)
    }

    /// GetRecords as a signed raw request.
    async fn get_records(&self, iterator: &str) -> Result<StreamPage, ReadError> {
        let body = serde_json::json!({ "ShardIterator": iterator, "Limit": PAGE_LIMIT });
        let body = serde_json::to_vec(&body).map_err(|e| ReadError::Other(e.to_string()))?;
        let target = "DynamoDBStreams_20120810.GetRecords";
        let response = self
            .signed_post(target, body)
            .await
            .map_err(ReadError::Other)?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ReadError::Other(format!("GetRecords body: {e}")))?;
        if status.is_success() {
            return parse_page(&bytes).map_err(ReadError::Other);
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if text.contains("ExpiredIteratorException") || text.contains("TrimmedDataAccessException")
        {
            return Err(ReadError::Stale);
        }
        Err(ReadError::Other(format!(
            "GetRecords: HTTP {status}: {text}"
        )))
    }

    /// POSTs an AWS JSON 1.0 request signed for the `dynamodb` service.
    async fn signed_post(&self, target: &str, body: Vec<u8>) -> Result<reqwest::Response, String> {
        const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
        let identity: Identity = credentials().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("dynamodb")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("cannot sign: {e}"))?
            .into();
        let headers = [("content-type", CONTENT_TYPE), ("x-amz-target", target)];
        let signable = SignableRequest::new(
            "POST",
            &self.endpoint,
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| format!("cannot sign: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("cannot sign: {e}"))?
            .into_parts();
        let mut request = self
            .http
            .post(&self.endpoint)
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", target);
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        request
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{target}: {e}"))
    }
}
