//! Configuration types. Every struct rejects unknown fields.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// A whole pipeline: where state lives, how to reach AWS, which tables to follow, where to write.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Directory for checkpoints and dead letters; created when missing.
    pub state_dir: PathBuf,
    /// AWS connection settings.
    #[serde(default)]
    pub aws: AwsConfig,
    /// Stream polling settings shared by all tables.
    #[serde(default)]
    pub source: SourceSettings,
    /// Who reads which shards: one process, or workers sharing a lease table.
    #[serde(default)]
    pub coordinator: super::CoordinatorConfig,
    /// The Prometheus and health-probe endpoint (off unless `listen` is set).
    #[serde(default)]
    pub metrics: super::MetricsConfig,
    /// Tables whose streams are followed; at least one.
    pub tables: Vec<TableConfig>,
    /// Destinations that receive every change of every table; at least one.
    pub sinks: Vec<SinkConfig>,
}

/// How to reach AWS. Credentials come from the standard AWS chain
/// (environment, profile, web identity, container, instance metadata).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Region; defaults to the AWS chain's (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Endpoint for both DynamoDB and DynamoDB Streams, for local stand-ins
    /// such as DynamoDB Local (`http://127.0.0.1:8000`).
    pub endpoint_url: Option<String>,
    /// Named profile from the shared AWS config files.
    pub profile: Option<String>,
    /// Endpoint for Kinesis Data Streams, for local stand-ins such as
    /// kinesalite; default: the region's.
    pub kinesis_endpoint_url: Option<String>,
}

/// Polling behaviour of the DynamoDB Streams source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceSettings {
    /// GetRecords `Limit`, 1 to 1000.
    pub batch_size: u32,
    /// First wait after a poll that returned nothing.
    #[serde(with = "humantime_serde")]
    pub idle_poll_min: Duration,
    /// Longest wait between polls of an idle shard.
    #[serde(with = "humantime_serde")]
    pub idle_poll_max: Duration,
    /// How often the shard list is re-read to find new shards.
    #[serde(with = "humantime_serde")]
    pub discovery_interval: Duration,
    /// Longest backoff after throttling or a server error.
    #[serde(with = "humantime_serde")]
    pub max_retry_backoff: Duration,
    /// Timeout of one request to AWS.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Kinesis GetRecords `Limit`, 1 to 10,000 (default 1,000: at 5 calls
    /// a second that is 5× a shard's write limit of 1,000 records a second,
    /// and it keeps pages, and so memory, small; 10,000 measured 304 MiB
    /// RSS over 4 shards of 3.7 KB records, 1,000 measured 107 MiB).
    pub kinesis_batch_size: u32,
    /// Records of tables a Kinesis stream carries but no `[[tables]]` entry
    /// follows: counted and skipped, or written to the dead-letter file.
    pub kinesis_other_tables: OtherTablesPolicy,
}

/// What to do with Kinesis records of tables the pipeline does not follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtherTablesPolicy {
    /// Count them (`other_table_records`) and move on (default).
    #[default]
    Skip,
    /// Write them to the dead-letter file and move on.
    DeadLetter,
}

impl Default for SourceSettings {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            idle_poll_min: Duration::from_millis(250),
            idle_poll_max: Duration::from_secs(2),
            discovery_interval: Duration::from_secs(10),
            max_retry_backoff: Duration::from_secs(20),
            request_timeout: Duration::from_secs(30),
            kinesis_batch_size: 1_000,
            kinesis_other_tables: OtherTablesPolicy::Skip,
        }
    }
}

/// One table whose stream is followed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// Table name; its latest stream is followed unless `stream_arn` is set.
    pub name: String,
    /// Explicit stream ARN, for an older stream of the table.
    pub stream_arn: Option<String>,
    /// Read the table's changes from this Kinesis data stream (name or
    /// ARN; the table's Kinesis streaming destination) instead of its
    /// DynamoDB stream. Several tables may name the same stream.
    pub kinesis_stream: Option<String>,
    /// With `start_position = "at_timestamp"`: the time (RFC 3339, e.g.
    /// `2026-11-29T12:00:00Z`) of the first record to read.
    pub start_timestamp: Option<String>,
    /// Where to start a shard that has no checkpoint.
    #[serde(default)]
    pub start_position: StartPosition,
    /// What to do when the stream no longer holds records after a checkpoint.
    #[serde(default)]
    pub on_trimmed: TrimPolicy,
    /// What to do with a record that cannot be decoded.
    #[serde(default)]
    pub on_decode_error: DecodeErrorPolicy,
    /// When to copy the table's current contents before streaming.
    #[serde(default)]
    pub snapshot: SnapshotMode,
    /// Parallel Scan segments of a snapshot (`TotalSegments`).
    #[serde(default = "default_snapshot_segments")]
    pub snapshot_segments: u32,
    /// Items per Scan page (`Limit`); DynamoDB's 1 MB page limit applies too.
    pub snapshot_page_size: Option<u32>,
    /// Read-capacity budget of a snapshot, in RCU per second over all
    /// segments (measured by the Scan's `ConsumedCapacity`).
    pub snapshot_max_rcu: Option<f64>,
    /// Item budget of a snapshot, in items per second over all segments.
    pub snapshot_max_items_per_second: Option<f64>,
    /// Strongly consistent Scan reads (twice the read capacity).
    #[serde(default)]
    pub snapshot_consistent_read: bool,
}

/// When a table's current contents are copied (a snapshot) before streaming.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// Never: only stream changes are delivered (default).
    #[default]
    Never,
    /// When the table has no checkpoint yet (its first run).
    Initial,
    /// On the first run, and again whenever changes after the checkpoint
    /// were lost (trimmed from the stream, a vanished shard, a replaced
    /// stream) instead of halting.
    WhenNeeded,
}

fn default_snapshot_segments() -> u32 {
    4
}

/// Where a shard without a checkpoint starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    /// The oldest record the stream still holds (24 hours back for
    /// DynamoDB Streams; the Kinesis stream's retention).
    #[default]
    TrimHorizon,
    /// Only changes made after the first start; shards already closed then are skipped.
    Latest,
    /// Kinesis only: the first record written at or after `start_timestamp`.
    AtTimestamp,
}

/// What to do when records after a checkpoint were trimmed from the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrimPolicy {
    /// Stop with an error that says what was lost (default).
    #[default]
    Halt,
    /// Log the gap as an error and continue at the oldest available record.
    Skip,
}

/// What to do with a record that cannot be decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecodeErrorPolicy {
    /// Write it with its error to the dead-letter file and move on (default).
    #[default]
    DeadLetter,
    /// Stop the pipeline with the error.
    Halt,
}

/// One destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    /// Embedded SQLite replica: one table per source table.
    Sqlite(SqliteSinkConfig),
    /// Change events appended to local JSON Lines files.
    Jsonl(JsonlSinkConfig),
    /// ClickHouse over its HTTP interface: versioned state or a change log.
    Clickhouse(ClickHouseSinkConfig),
    /// Batches as gzipped JSON Lines objects in S3, announced on SQS.
    S3(S3SinkConfig),
    /// A re-materialised table per source table in PostgreSQL.
    Postgres(PostgresSinkConfig),
}

impl SinkConfig {
    /// The sink's name in logs and metrics: its `name`, or its type.
    pub fn name(&self) -> String {
        match self {
            SinkConfig::Sqlite(c) => c.name.clone().unwrap_or_else(|| "sqlite".into()),
            SinkConfig::Jsonl(c) => c.name.clone().unwrap_or_else(|| "jsonl".into()),
            SinkConfig::Clickhouse(c) => c.name.clone().unwrap_or_else(|| "clickhouse".into()),
            SinkConfig::S3(c) => c.name.clone().unwrap_or_else(|| "s3".into()),
            SinkConfig::Postgres(c) => c.name.clone().unwrap_or_else(|| "postgres".into()),
        }
    }

    /// The sink's batching settings.
    pub fn batch(&self) -> &BatchConfig {
        match self {
            SinkConfig::Sqlite(c) => &c.batch,
            SinkConfig::Jsonl(c) => &c.batch,
            SinkConfig::Clickhouse(c) => &c.batch,
            SinkConfig::S3(c) => &c.batch,
            SinkConfig::Postgres(c) => &c.batch,
        }
    }
}

/// Settings of the `sqlite` sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteSinkConfig {
    /// Name in logs; defaults to `sqlite`.
    pub name: Option<String>,
    /// Database file; created when missing.
    pub path: PathBuf,
    /// Remove tombstones (deleted rows) this long after the delete; kept forever when unset.
    /// Keep it longer than any replay window (hours), or a replayed insert could resurrect a row.
    #[serde(default, with = "humantime_serde")]
    pub purge_tombstones_after: Option<Duration>,
    /// Batching.
    #[serde(default)]
    pub batch: BatchConfig,
}

/// Settings of the `jsonl` sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlSinkConfig {
    /// Name in logs; defaults to `jsonl`.
    pub name: Option<String>,
    /// Directory; one subdirectory per source table.
    pub dir: PathBuf,
    /// Gzip each file (`.jsonl.gz`).
    #[serde(default)]
    pub gzip: bool,
    /// Start a new file once the current one holds this many bytes; one file per run when unset.
    pub rotate_bytes: Option<u64>,
    /// Batching.
    #[serde(default)]
    pub batch: BatchConfig,
}

/// When a sink writes: a batch closes at whichever limit comes first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Records per batch (a source page is never split, so a batch may exceed it by one page).
    pub max_records: usize,
    /// Approximate bytes per batch (DynamoDB's record sizes).
    pub max_bytes: u64,
    /// Longest time the oldest record waits for its batch to close.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// Longest backoff between retries of a failed write.
    #[serde(with = "humantime_serde")]
    pub max_retry_backoff: Duration,
    /// How long the sink may keep failing before `/readyz` reports the
    /// engine unready (it keeps retrying either way).
    #[serde(with = "humantime_serde")]
    pub unready_after: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_records: 5000,
            max_bytes: 8 * 1024 * 1024,
            max_age: Duration::from_millis(100),
            max_retry_backoff: Duration::from_secs(30),
            unready_after: Duration::from_secs(60),
        }
    }
}

/// Settings of the `clickhouse` sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseSinkConfig {
    /// Name in logs; defaults to `clickhouse`.
    pub name: Option<String>,
    /// HTTP(S) interface, e.g. `http://127.0.0.1:8123`; TLS when `https://`.
    pub url: String,
    /// Database of the target tables.
    #[serde(default = "default_database")]
    pub database: String,
    /// User (HTTP basic auth).
    #[serde(default = "default_user")]
    pub user: String,
    /// Password; never logged (its `Debug` form is `***`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// `state` (versioned ReplacingMergeTree, default) or `changelog` (one row per change).
    #[serde(default)]
    pub mode: ClickHouseMode,
    /// Prefix of the target table names (`<prefix><source table>`).
    #[serde(default)]
    pub table_prefix: String,
    /// Create the database and tables when missing.
    #[serde(default)]
    pub create_table: bool,
    /// Typed columns extracted from the item, next to the item JSON.
    #[serde(default)]
    pub columns: Vec<ColumnMapping>,
    /// Inserts running at once (one per target table).
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Timeout of one HTTP request.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Gzip the inserts (default true): less network, more CPU on both ends;
    /// turn off when the server is on the same host or a fast network.
    #[serde(default = "default_compress")]
    pub compress: bool,
    /// Batching.
    #[serde(default)]
    pub batch: BatchConfig,
}

fn default_compress() -> bool {
    true
}

fn default_database() -> String {
    "default".into()
}

fn default_user() -> String {
    "default".into()
}

fn default_concurrency() -> usize {
    4
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(60)
}

/// How the `clickhouse` sink lays out its tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClickHouseMode {
    /// One row per item version; `FINAL` with `_is_deleted = 0` is the current state.
    #[default]
    State,
    /// Append-only: one row per change with op, images, version and event metadata.
    Changelog,
}

/// One typed column filled from an item attribute.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnMapping {
    /// Column name in ClickHouse.
    pub name: String,
    /// Top-level attribute it comes from; defaults to `name`.
    pub attribute: Option<String>,
    /// ClickHouse type: String, Int64, UInt64, Float64, Decimal(P,S), Bool,
    /// UInt8, DateTime, Array(String), or Nullable(one of those).
    #[serde(rename = "type")]
    pub column_type: String,
    /// Only for this source table; for every table when unset.
    pub table: Option<String>,
}

impl ColumnMapping {
    /// The attribute the column is filled from.
    pub fn attribute(&self) -> &str {
        self.attribute.as_deref().unwrap_or(&self.name)
    }
}

/// A secret string from the configuration: `Debug` prints `***`, so a
/// logged configuration never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Settings of the `s3` sink (the landing zone of a staged pipeline).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3SinkConfig {
    /// Name in logs; defaults to `s3`.
    pub name: Option<String>,
    /// Bucket.
    pub bucket: String,
    /// Key prefix (`landing/`); objects go to `<prefix><table>/dt=YYYY-MM-DD/…`.
    #[serde(default)]
    pub prefix: String,
    /// Region of the bucket and queue; defaults to `aws.region`.
    pub region: Option<String>,
    /// S3 endpoint for local stand-ins (path-style requests, http allowed).
    pub endpoint_url: Option<String>,
    /// SQS queue that gets a notice per object; no notices when unset.
    pub sqs_queue_url: Option<String>,
    /// SQS endpoint for local stand-ins; defaults to `endpoint_url`.
    pub sqs_endpoint_url: Option<String>,
    /// Object format.
    #[serde(default)]
    pub format: S3Format,
    /// Typed Parquet columns filled from item attributes (`format = "parquet"` only).
    #[serde(default)]
    pub columns: Vec<ColumnMapping>,
    /// Batching: one object per table and shard per batch.
    #[serde(default = "s3_batch")]
    pub batch: BatchConfig,
}

fn s3_batch() -> BatchConfig {
    BatchConfig {
        max_records: 50_000,
        max_bytes: 64 * 1024 * 1024,
        max_age: Duration::from_secs(10),
        ..BatchConfig::default()
    }
}

/// The format of landed objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum S3Format {
    /// Gzipped JSON Lines, one change event per line (`.jsonl.gz`).
    #[default]
    JsonlGz,
    /// Parquet (Snappy), one row per change, images as DynamoDB JSON strings (`.parquet`).
    Parquet,
}

impl S3Format {
    /// The file extension, also the `format` of notices (`jsonl.gz`, `parquet`).
    pub fn extension(self) -> &'static str {
        match self {
            Self::JsonlGz => "jsonl.gz",
            Self::Parquet => "parquet",
        }
    }
}

/// Settings of the `postgres` sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkConfig {
    /// Name in logs; defaults to `postgres`.
    pub name: Option<String>,
    /// Connection string (`postgres://user:password@host:5432/db` or
    /// `host=… user=…`); never logged (it may hold the password).
    pub url: Secret,
    /// PEM file of extra trusted CA certificates for TLS (`sslmode=require`),
    /// e.g. a cloud provider's database CA bundle; the system's roots are
    /// always trusted too.
    pub ca_file: Option<PathBuf>,
    /// Schema of the target tables.
    #[serde(default = "default_pg_schema")]
    pub schema: String,
    /// Prefix of the target table names (`<prefix><source table>`).
    #[serde(default)]
    pub table_prefix: String,
    /// Create the schema, tables and live views when missing.
    #[serde(default)]
    pub create_table: bool,
    /// `postgres` (default) or `cratedb` (no transactions: upserts only,
    /// idempotent by version, no transactional checkpoint).
    #[serde(default)]
    pub dialect: SqlDialect,
    /// Write each shard's checkpoint in the same transaction as the data
    /// (`<schema>.dynamo_cdc_checkpoints`) and skip changes at or below it:
    /// a replay can never apply a batch twice. PostgreSQL only; default on there.
    pub exactly_once: Option<bool>,
    /// How rows reach the tables: `copy` (binary COPY into a staging table,
    /// then one merge; PostgreSQL's default) or `insert` (multi-row upserts;
    /// the only method for CrateDB).
    pub write_method: Option<PgWriteMethod>,
    /// Delete tombstones this long after the delete; kept forever when unset.
    /// Keep it longer than any replay window, or a replayed insert could resurrect a row.
    #[serde(default, with = "humantime_serde")]
    pub purge_tombstones_after: Option<Duration>,
    /// Batching.
    #[serde(default)]
    pub batch: BatchConfig,
}

/// How the `postgres` sink sends a batch's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PgWriteMethod {
    /// Multi-row `INSERT … ON CONFLICT` statements of up to 1,000 rows.
    Insert,
    /// Binary COPY into a temporary staging table, then `INSERT … SELECT …
    /// ON CONFLICT` into the target.
    Copy,
}

/// The SQL database behind the `postgres` sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SqlDialect {
    /// PostgreSQL.
    #[default]
    Postgres,
    /// CrateDB (PostgreSQL wire protocol, its own SQL).
    Cratedb,
}

impl PostgresSinkConfig {
    /// Whether checkpoints are written with the data (PostgreSQL's default).
    pub fn exactly_once(&self) -> bool {
        self.exactly_once
            .unwrap_or(self.dialect == SqlDialect::Postgres)
    }

    /// The write method: as configured, else `copy` on PostgreSQL and
    /// `insert` on CrateDB.
    pub fn write_method(&self) -> PgWriteMethod {
        self.write_method.unwrap_or(match self.dialect {
            SqlDialect::Postgres => PgWriteMethod::Copy,
            SqlDialect::Cratedb => PgWriteMethod::Insert,
        })
    }
}

fn default_pg_schema() -> String {
    "public".into()
}
