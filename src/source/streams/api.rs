//! The stream APIs the engine uses: DescribeTable (key schema and stream),
//! DescribeStream (shards), GetShardIterator (SDK) and GetRecords (signed request).

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::types::{AttributeDefinition, KeySchemaElement, StreamSpecification};
use aws_sdk_dynamodbstreams::config::endpoint::{Params, ResolveEndpoint};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;

use crate::aws::credentials::CachedCredentials;
use crate::config::{AwsConfig, SourceSettings};
use crate::decode::RecordsPage;
use crate::model::{KeyAttribute, KeyKind, TableSchema, VersionScheme};
use crate::source::retry::RetryPolicy;
use crate::source::shard::{ShardInfo, ShardStart};
use crate::source::signed::SignedClient;
use crate::source::SourceError;

/// The stream view type: which images records carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewType {
    /// Keys only.
    KeysOnly,
    /// The item after the change.
    NewImage,
    /// The item before the change.
    OldImage,
    /// Both.
    NewAndOldImages,
}

impl ViewType {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "KEYS_ONLY" => Some(Self::KeysOnly),
            "NEW_IMAGE" => Some(Self::NewImage),
            "OLD_IMAGE" => Some(Self::OldImage),
            "NEW_AND_OLD_IMAGES" => Some(Self::NewAndOldImages),
            _ => None,
        }
    }

    /// True when records carry the item after the change.
    pub fn has_new_image(self) -> bool {
        matches!(self, Self::NewImage | Self::NewAndOldImages)
    }

    /// True when records carry the item before the change.
    pub fn has_old_image(self) -> bool {
        matches!(self, Self::OldImage | Self::NewAndOldImages)
    }
}

/// A table and the stream the engine follows.
#[derive(Debug, Clone)]
pub struct TableStream {
    /// The table's name and key.
    pub schema: TableSchema,
    /// The stream's ARN.
    pub stream_arn: Arc<str>,
    /// What records carry.
    pub view_type: ViewType,
}

/// Attempts of one SDK call (the first and its retries) before its error
/// reaches the engine.
const SDK_MAX_ATTEMPTS: u32 = 8;

/// Clients for DynamoDB (table metadata) and DynamoDB Streams.
pub struct StreamsApi {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    records: SignedClient,
    tables: SignedClient,
    endpoint_label: String,
    sdk_config: SdkConfig,
    retry: RetryPolicy,
}

impl StreamsApi {
    /// Builds the clients from the standard AWS configuration chain plus the
    /// pipeline's `[aws]` overrides.
    pub async fn connect(aws: &AwsConfig, source: &SourceSettings) -> Result<Self, SourceError> {
        // The SDK's own retries (throttling, 5xx, resets: jittered and
        // exponential) cover the lease table's and metadata calls; record
        // reads retry in the shard reader.
        let retry = RetryConfig::standard()
            .with_max_attempts(SDK_MAX_ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(source.max_retry_backoff);
        let mut loader = crate::aws::config_loader()
            .retry_config(retry)
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(source.request_timeout)
                    .connect_timeout(Duration::from_secs(5))
                    .build(),
            );
        if let Some(region) = &aws.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &aws.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &aws.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let sdk_config: SdkConfig = loader.load().await;
        let config_error = |message: String| SourceError::Fatal {
            operation: "configure",
            message,
        };
        let region = sdk_config.region().map(|r| r.to_string()).ok_or_else(|| {
            config_error("no AWS region: set aws.region in the config or AWS_REGION".into())
        })?;
        let provider = sdk_config.credentials_provider().ok_or_else(|| {
            config_error("no AWS credentials provider could be configured".into())
        })?;
        let endpoint = match &aws.endpoint_url {
            Some(url) => url.clone(),
            None => resolve_streams_endpoint(&region).await?,
        };
        let tables_endpoint = match &aws.endpoint_url {
            Some(url) => url.clone(),
            None => resolve_dynamodb_endpoint(&region).await?,
        };
        let credentials = CachedCredentials::new(provider);
        let records = SignedClient::new(
            endpoint.clone(),
            region.clone(),
            credentials.clone(),
            source.request_timeout,
        )?;
        let tables =
            SignedClient::new(tables_endpoint, region, credentials, source.request_timeout)?;
        Ok(Self {
            sdk_config: sdk_config.clone(),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk_config),
            streams: aws_sdk_dynamodbstreams::Client::new(&sdk_config),
            records,
            tables,
            endpoint_label: aws.endpoint_url.clone().unwrap_or(endpoint),
            retry: RetryPolicy::metadata(source.max_retry_backoff),
        })
    }

    /// The SDK configuration (credentials, region, timeouts) the clients share.
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk_config
    }

    /// Where requests go, for messages.
    pub fn endpoint(&self) -> &str {
        &self.endpoint_label
    }

    /// The DynamoDB client (lease tables use it too).
    pub fn dynamodb_client(&self) -> &aws_sdk_dynamodb::Client {
        &self.dynamodb
    }

    /// The signed client of the DynamoDB (tables) endpoint, for Scan.
    pub fn tables_client(&self) -> &SignedClient {
        &self.tables
    }

    /// One DescribeTable call.
    async fn describe(
        &self,
        table: &str,
    ) -> Result<aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput, SourceError> {
        self.retry
            .run(|| async {
                self.dynamodb
                    .describe_table()
                    .table_name(table)
                    .send()
                    .await
                    .map_err(|err| SourceError::from_sdk("DescribeTable", err))
            })
            .await
    }

    /// The `ApproximateCreationDateTimePrecision` of `table`'s active Kinesis
    /// streaming destination to `stream` (a name or ARN), `None` when the
    /// table has no active destination to it.
    pub async fn kinesis_precision(
        &self,
        table: &str,
        stream: &str,
    ) -> Result<Option<String>, SourceError> {
        let output = self
            .retry
            .run(|| async {
                self.dynamodb
                    .describe_kinesis_streaming_destination()
                    .table_name(table)
                    .send()
                    .await
                    .map_err(|err| {
                        SourceError::from_sdk("DescribeKinesisStreamingDestination", err)
                    })
            })
            .await?;
        let wanted = |arn: &str| arn == stream || arn.ends_with(&format!(":stream/{stream}"));
        Ok(output
            .kinesis_data_stream_destinations()
            .iter()
            .filter(|d| d.stream_arn().is_some_and(wanted))
            .find(|d| {
                d.destination_status()
                    .is_some_and(|s| s.as_str() == "ACTIVE")
            })
            .map(|d| {
                d.approximate_creation_date_time_precision()
                    .map_or_else(|| "MILLISECOND".to_owned(), |p| p.as_str().to_owned())
            }))
    }

    /// DynamoDB's estimate of a table's item count and size in bytes
    /// (DescribeTable; AWS refreshes it about every six hours).
    pub async fn table_estimate(&self, table: &str) -> Result<(u64, u64), SourceError> {
        let output = self.describe(table).await?;
        let description = output
            .table
            .unwrap_or_else(|| aws_sdk_dynamodb::types::TableDescription::builder().build());
        let count = description.item_count.unwrap_or(0).max(0).unsigned_abs();
        let bytes = description
            .table_size_bytes
            .unwrap_or(0)
            .max(0)
            .unsigned_abs();
        Ok((count, bytes))
    }

    /// Finds a table's key schema and its stream (`stream_arn`, or the
    /// latest one). With `kinesis`, the table's changes come from a Kinesis
    /// stream instead: no DynamoDB stream is needed, the stream id is left
    /// empty and the view is NEW_AND_OLD_IMAGES (what Kinesis destinations carry).
    pub async fn describe_table(
        &self,
        table: &str,
        stream_arn: Option<&str>,
        kinesis: bool,
    ) -> Result<TableStream, SourceError> {
        let output = self.describe(table).await?;
        let description = output
            .table
            .ok_or_else(|| describe_fatal(format!("no description returned for table {table}")))?;
        let keys = key_attributes(
            table,
            description.key_schema.unwrap_or_default(),
            &description.attribute_definitions.unwrap_or_default(),
        )?;
        if kinesis {
            return Ok(TableStream {
                schema: TableSchema {
                    name: Arc::from(table),
                    keys,
                    versions: VersionScheme::Time,
                },
                stream_arn: Arc::from(""),
                view_type: ViewType::NewAndOldImages,
            });
        }
        let stream_arn = match stream_arn {
            Some(arn) => arn.to_owned(),
            None => description.latest_stream_arn.ok_or_else(|| {
                describe_fatal(format!(
                    "table {table} has no stream: enable DynamoDB Streams on it (view type NEW_AND_OLD_IMAGES)"
                ))
            })?,
        };
        let view_type = self
            .view_type(description.stream_specification.as_ref(), &stream_arn)
            .await?;
        Ok(TableStream {
            schema: TableSchema {
                name: Arc::from(table),
                keys,
                versions: VersionScheme::Sequence,
            },
            stream_arn: Arc::from(stream_arn.as_str()),
            view_type,
        })
    }

    /// The stream's view type: the table's stream specification's while
    /// streams are enabled on it, else the stream's own (DescribeStream).
    async fn view_type(
        &self,
        specification: Option<&StreamSpecification>,
        stream_arn: &str,
    ) -> Result<ViewType, SourceError> {
        let specified = specification
            .filter(|spec| spec.stream_enabled)
            .and_then(|spec| spec.stream_view_type.as_ref())
            .and_then(|view| ViewType::parse(view.as_str()));
        match specified {
            Some(view) => Ok(view),
            None => self.stream_view_type(stream_arn).await,
        }
    }

    async fn stream_view_type(&self, stream_arn: &str) -> Result<ViewType, SourceError> {
        let output = self
            .retry
            .run(|| async {
                self.streams
                    .describe_stream()
                    .stream_arn(stream_arn)
                    .limit(1)
                    .send()
                    .await
                    .map_err(|err| SourceError::from_sdk("DescribeStream", err))
            })
            .await?;
        output
            .stream_description
            .and_then(|d| d.stream_view_type)
            .and_then(|v| ViewType::parse(v.as_str()))
            .ok_or_else(|| SourceError::Fatal {
                operation: "DescribeStream",
                message: format!("stream {stream_arn} has no known view type"),
            })
    }

    /// Every shard of a stream (DescribeStream, 100 shards a page).
    pub async fn list_shards(&self, stream_arn: &str) -> Result<Vec<ShardInfo>, SourceError> {
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let page_start = start.take();
            let output = self
                .retry
                .run(|| async {
                    self.streams
                        .describe_stream()
                        .stream_arn(stream_arn)
                        .limit(100)
                        .set_exclusive_start_shard_id(page_start.clone())
                        .send()
                        .await
                        .map_err(|err| SourceError::from_sdk("DescribeStream", err))
                })
                .await?;
            let Some(description) = output.stream_description else {
                break;
            };
            for shard in description.shards.unwrap_or_default() {
                let Some(id) = shard.shard_id else { continue };
                shards.push(ShardInfo {
                    id,
                    parents: shard.parent_shard_id.into_iter().collect(),
                    closed: shard
                        .sequence_number_range
                        .and_then(|range| range.ending_sequence_number)
                        .is_some(),
                });
            }
            match description.last_evaluated_shard_id {
                Some(last) => start = Some(last),
                None => break,
            }
        }
        Ok(shards)
    }

    /// Opens an iterator on a shard.
    pub async fn shard_iterator(
        &self,
        stream_arn: &str,
        shard: &str,
        start: &ShardStart,
    ) -> Result<Option<String>, SourceError> {
        let request = self
            .streams
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(shard);
        let request = match start {
            ShardStart::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            ShardStart::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            ShardStart::After(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence.as_str()),
            ShardStart::At(sequence) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .sequence_number(sequence.as_str()),
            ShardStart::AtTimestamp(_) => {
                return Err(SourceError::Fatal {
                    operation: "GetShardIterator",
                    message: "DynamoDB Streams has no AT_TIMESTAMP iterator (start_position = \"at_timestamp\" is for Kinesis sources)".into(),
                })
            }
        };
        let output = request
            .send()
            .await
            .map_err(|err| SourceError::from_sdk("GetShardIterator", err))?;
        Ok(output.shard_iterator)
    }

    /// Reads one page of records.
    pub async fn get_records(
        &self,
        iterator: &str,
        limit: u32,
    ) -> Result<RecordsPage, SourceError> {
        self.records.get_records(iterator, limit).await
    }
}

/// A DescribeTable answer the engine cannot use.
fn describe_fatal(message: String) -> SourceError {
    SourceError::Fatal {
        operation: "DescribeTable",
        message,
    }
}

/// A table's key attributes with their types, the partition (HASH) key
/// first, then the sort (RANGE) key; a key without an attribute
/// definition, or of a type other than S, N or B, is an error.
fn key_attributes(
    table: &str,
    mut schema: Vec<KeySchemaElement>,
    definitions: &[AttributeDefinition],
) -> Result<Vec<KeyAttribute>, SourceError> {
    schema.sort_by_key(|k| k.key_type.as_str() != "HASH");
    let mut keys = Vec::with_capacity(schema.len());
    for element in schema {
        let name = element.attribute_name;
        let kind = definitions
            .iter()
            .find(|d| d.attribute_name == name)
            .map(|d| d.attribute_type.as_str())
            .ok_or_else(|| {
                describe_fatal(format!(
                    "table {table}: key {name} has no attribute definition"
                ))
            })?;
        let kind = match kind {
            "S" => KeyKind::S,
            "N" => KeyKind::N,
            "B" => KeyKind::B,
            other => {
                return Err(describe_fatal(format!(
                    "table {table}: key {name} has unknown type {other}"
                )))
            }
        };
        keys.push(KeyAttribute { name, kind });
    }
    Ok(keys)
}

/// The regional DynamoDB Streams endpoint, from the SDK's endpoint rules
/// (partitions, FIPS and dual-stack included).
async fn resolve_streams_endpoint(region: &str) -> Result<String, SourceError> {
    let fatal = |message: String| SourceError::Fatal {
        operation: "resolve endpoint",
        message,
    };
    let params = Params::builder()
        .region(region.to_owned())
        .build()
        .map_err(|err| fatal(format!("region {region:?}: {err}")))?;
    let endpoint = aws_sdk_dynamodbstreams::config::endpoint::DefaultResolver::new()
        .resolve_endpoint(&params)
        .await
        .map_err(|err| fatal(format!("region {region:?}: {err}")))?;
    Ok(endpoint.url().to_owned())
}

/// The regional DynamoDB endpoint, from the SDK's endpoint rules.
async fn resolve_dynamodb_endpoint(region: &str) -> Result<String, SourceError> {
    let fatal = |message: String| SourceError::Fatal {
        operation: "resolve endpoint",
        message,
    };
    let params = aws_sdk_dynamodb::config::endpoint::Params::builder()
        .region(region.to_owned())
        .build()
        .map_err(|err| fatal(format!("region {region:?}: {err}")))?;
    let endpoint = aws_sdk_dynamodb::config::endpoint::ResolveEndpoint::resolve_endpoint(
        &aws_sdk_dynamodb::config::endpoint::DefaultResolver::new(),
        &params,
    )
    .await
    .map_err(|err| fatal(format!("region {region:?}: {err}")))?;
    Ok(endpoint.url().to_owned())
}
