//! The sources a table's changes can come from, chosen in one place.
//!
//! A table names its source in its config (`kinesis_stream` means a Kinesis
//! data stream; otherwise its DynamoDB stream). Everything that differs
//! between sources outside their folders is answered here: how changes are
//! versioned, how snapshot rows are versioned below them, how many records
//! one read asks for, which tables one reader serves, what is checked when
//! a table is described, and which [`ShardSource`] reads a stream. A new
//! source adds a variant, its arms below and its folder.

use std::sync::Arc;

use crate::config::{SourceSettings, TableConfig};
use crate::model::VersionScheme;
use crate::source::shard::ShardSource;
use crate::source::snapshot::SnapshotVersions;
use crate::source::streams::{StreamsApi, StreamsShards, TableStream};
use crate::source::SourceError;

/// Where a table's changes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// The table's DynamoDB stream: one reader per table.
    DynamoDbStreams,
    /// A Kinesis data stream the table writes to (its Kinesis streaming
    /// destination): one reader per stream, shared by the tables on it.
    Kinesis,
}

impl SourceKind {
    /// The source of `table`'s changes.
    pub fn of(table: &TableConfig) -> Self {
        Self::from_kinesis(table.kinesis_stream.is_some())
    }

    /// Kinesis when `kinesis` is set (a loader table's `kinesis = true`),
    /// else DynamoDB Streams.
    pub fn from_kinesis(kinesis: bool) -> Self {
        if kinesis {
            Self::Kinesis
        } else {
            Self::DynamoDbStreams
        }
    }

    /// How its changes are versioned: by stream sequence number, or (Kinesis
    /// records carry none a sink could compare) by creation time.
    pub fn versions(self) -> VersionScheme {
        match self {
            Self::DynamoDbStreams => VersionScheme::Sequence,
            Self::Kinesis => VersionScheme::Time,
        }
    }

    /// How snapshot rows of its tables are versioned, so that every change
    /// streamed after the snapshot began wins over them.
    pub fn snapshot_versions(self) -> SnapshotVersions {
        match self {
            Self::DynamoDbStreams => SnapshotVersions::AboveSequences,
            Self::Kinesis => SnapshotVersions::FromClock,
        }
    }

    /// The records one read asks for.
    pub fn batch_size(self, settings: &SourceSettings) -> u32 {
        match self {
            Self::DynamoDbStreams => settings.batch_size,
            Self::Kinesis => settings.kinesis_batch_size,
        }
    }

    /// True when `a` and `b` are read by one reader (tables on the same
    /// Kinesis stream); a DynamoDB stream belongs to one table.
    pub fn same_reader(a: &TableConfig, b: &TableConfig) -> bool {
        match Self::of(a) {
            Self::DynamoDbStreams => false,
            Self::Kinesis => configured_stream(a) == configured_stream(b),
        }
    }
}

/// The stream named in `table`'s config (a Kinesis data stream's name or
/// ARN); `None` when its source finds the stream by describing the table.
pub fn configured_stream(table: &TableConfig) -> Option<&str> {
    match SourceKind::of(table) {
        SourceKind::DynamoDbStreams => None,
        SourceKind::Kinesis => table.kinesis_stream.as_deref(),
    }
}

/// The stream `table`'s shard checkpoints are kept under: the configured
/// stream, or the DynamoDB stream's ARN (found by describing the table).
pub async fn checkpoint_stream(
    api: &StreamsApi,
    table: &TableConfig,
) -> Result<String, SourceError> {
    if let Some(stream) = configured_stream(table) {
        return Ok(stream.to_owned());
    }
    let described = api
        .describe_table(&table.name, table.stream_arn.as_deref(), false)
        .await?;
    Ok(described.stream_arn.to_string())
}

/// Describes `table` (key schema, stream and view type) as its source
/// needs it, and warns about what would keep changes from arriving.
pub async fn describe(api: &StreamsApi, table: &TableConfig) -> Result<TableStream, SourceError> {
    let kind = SourceKind::of(table);
    let described = api
        .describe_table(
            &table.name,
            table.stream_arn.as_deref(),
            kind == SourceKind::Kinesis,
        )
        .await?;
    #[cfg(feature = "kinesis")]
    if let Some(stream) = configured_stream(table) {
        super::kinesis::check_destination(api, &table.name, stream).await;
    }
    Ok(described)
}

/// Starts the reader of one stream with the [`ShardSource`] the registry
/// built for it (a generic callback: sources differ in their page types).
pub trait StartReader {
    /// Starts reading with `source`.
    fn start<S: ShardSource>(&mut self, source: S);
}

/// Builds the shard source that reads `tables` (one reader's group: the
/// first is the lead) and hands it to `reader`.
pub fn open(
    api: &Arc<StreamsApi>,
    settings: &SourceSettings,
    kinesis_endpoint: Option<&str>,
    tables: &[(&TableConfig, &TableStream)],
    reader: &mut impl StartReader,
) -> Result<(), SourceError> {
    let Some(&(lead, stream)) = tables.first() else {
        return Ok(());
    };
    match SourceKind::of(lead) {
        SourceKind::DynamoDbStreams => {
            tracing::info!(table = %stream.schema.name, stream = %stream.stream_arn, "following DynamoDB stream");
            reader.start(StreamsShards::new(
                Arc::clone(api),
                Arc::clone(&stream.stream_arn),
                Arc::clone(&stream.schema.name),
            ));
            Ok(())
        }
        SourceKind::Kinesis => open_kinesis(api, settings, kinesis_endpoint, tables, reader),
    }
}

#[cfg(feature = "kinesis")]
fn open_kinesis(
    api: &Arc<StreamsApi>,
    settings: &SourceSettings,
    endpoint: Option<&str>,
    tables: &[(&TableConfig, &TableStream)],
    reader: &mut impl StartReader,
) -> Result<(), SourceError> {
    let names: Vec<String> = tables.iter().map(|(t, _)| t.name.clone()).collect();
    let stream = tables
        .first()
        .and_then(|(lead, _)| configured_stream(lead))
        .unwrap_or_default();
    tracing::info!(tables = %names.join(", "), stream = %stream, "following Kinesis stream");
    let client = super::kinesis::client(api, endpoint);
    let retry = super::retry::RetryPolicy::metadata(settings.max_retry_backoff);
    reader.start(super::kinesis::KinesisShards::new(
        client, stream, &names, retry,
    ));
    Ok(())
}

/// Validation refuses a `kinesis_stream` in a build without the source;
/// this names the feature should a config reach here anyway.
#[cfg(not(feature = "kinesis"))]
fn open_kinesis(
    _api: &Arc<StreamsApi>,
    _settings: &SourceSettings,
    _endpoint: Option<&str>,
    _tables: &[(&TableConfig, &TableStream)],
    _reader: &mut impl StartReader,
) -> Result<(), SourceError> {
    Err(SourceError::Fatal {
        operation: "start",
        message: crate::error_text::not_built("the Kinesis source", "kinesis"),
    })
}
