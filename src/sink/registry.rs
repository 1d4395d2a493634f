//! The one registration of sinks. A `[[sinks]]` entry's `type` picks a sink
//! folder's config type; that type validates itself, says what it needs from
//! the source and opens its writer. Adding a sink is its folder plus one line
//! in [`register_sinks!`] below.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::mpsc;

use super::batch::BatchConfig;
#[cfg(feature = "clickhouse")]
use super::clickhouse::ClickHouseSinkConfig;
#[cfg(feature = "elasticsearch")]
use super::elasticsearch::ElasticsearchSinkConfig;
#[cfg(feature = "jsonl")]
use super::jsonl::JsonlSinkConfig;
#[cfg(feature = "kafka")]
use super::kafka::KafkaSinkConfig;
#[cfg(feature = "postgres")]
use super::postgres::PostgresSinkConfig;
#[cfg(feature = "s3")]
use super::s3::S3SinkConfig;
#[cfg(feature = "sqlite")]
use super::sqlite::SqliteSinkConfig;
use super::{run_sink, Batch, Rejected, SinkContext, SinkError, SinkWriter};
use crate::aws::AwsConfig;
use crate::coordinator::Chunk;
use crate::model::TableSchema;
use crate::schema::SchemaEvent;

/// A configuration problem inside one `[[sinks]]` entry: the field's path
/// relative to the entry (`columns[2].type`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    /// Dotted path of the field within the sink's entry.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl InvalidField {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same problem, with its field nested under `parent` (`batch`).
    pub fn under(self, parent: &str) -> Self {
        Self {
            field: format!("{parent}.{}", self.field),
            message: self.message,
        }
    }
}

/// What a sink may use to open its writer besides its own settings.
#[derive(Debug, Clone, Copy)]
pub struct SinkEnv<'a> {
    /// The sink's name in logs and metrics.
    pub name: &'a str,
    /// Key schemas of every table the pipeline follows.
    pub tables: &'a [TableSchema],
    /// How to reach AWS (for sinks on AWS services or signing with SigV4).
    pub aws: &'a AwsConfig,
}

/// A sink folder's settings: the contract every registered sink's config type keeps.
pub trait SinkSpec: Send + Sync {
    /// The writer this sink runs.
    type Writer: SinkWriter;

    /// The configured `name`, if any (the registration's `type` otherwise).
    fn name(&self) -> Option<&str>;

    /// Batching limits.
    fn batch(&self) -> &BatchConfig;

    /// Checks what the types cannot (ranges, formats, combinations). No I/O.
    fn validate(&self) -> Result<(), InvalidField>;

    /// True when the sink keeps state and so needs the stream to carry new
    /// images (`NEW_IMAGE` or `NEW_AND_OLD_IMAGES`).
    fn needs_new_images(&self) -> bool;

    /// Connects to the destination (creating what it is told to create)
    /// and returns the writer; fails when the destination cannot be used.
    fn open(
        &self,
        env: SinkEnv<'_>,
    ) -> impl Future<Output = Result<Self::Writer, SinkError>> + Send;

    /// The schema history the sink keeps of its inferred columns
    /// (`columns = "auto"`), oldest first; `None` for a sink that keeps none.
    fn schema_history(
        &self,
        env: SinkEnv<'_>,
    ) -> impl Future<Output = Result<Option<Vec<SchemaEvent>>, SinkError>> + Send {
        let _ = env;
        async { Ok(None) }
    }
}

/// A started sink: runs until its channel closes or it fails for good.
pub type SinkTask = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send>>;

/// Declares [`SinkConfig`] with one variant per registered sink, and its
/// dispatch to the variant's [`SinkSpec`]. A sink whose Cargo feature is
/// off keeps its variant, holding [`NotBuilt`], so that its `type` is
/// still known and refused with the feature to build with.
macro_rules! register_sinks {
    ($( $(#[$doc:meta])* $variant:ident = $kind:literal if $feature:literal ($config:ty), )+) => {
        /// One destination: a `[[sinks]]` entry, chosen by its `type`.
        #[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
        #[serde(tag = "type")]
        pub enum SinkConfig {
            $(
                $(#[$doc])*
                #[cfg(feature = $feature)]
                #[serde(rename = $kind)]
                $variant($config),
                $(#[$doc])*
                #[cfg(not(feature = $feature))]
                #[serde(rename = $kind)]
                $variant(NotBuilt),
            )+
        }

        impl SinkConfig {
            /// The `type` of the entry.
            pub fn kind(&self) -> &'static str {
                match self { $( Self::$variant(_) => $kind, )+ }
            }

            /// The Cargo feature this build lacks for the entry's sink, if any.
            pub fn missing_feature(&self) -> Option<&'static str> {
                match self { $( Self::$variant(_) => (!cfg!(feature = $feature)).then_some($feature), )+ }
            }

            fn spec(&self) -> &dyn SpecFacts {
                match self { $( Self::$variant(config) => config, )+ }
            }

            /// Opens the sink's writer and returns the task that runs it.
            pub async fn start(
                &self,
                env: SinkEnv<'_>,
                chunks: mpsc::Receiver<Arc<Chunk>>,
                ctx: SinkContext,
            ) -> Result<SinkTask, SinkError> {
                match self { $( Self::$variant(config) => start(config, env, chunks, ctx).await, )+ }
            }

            /// The schema history the sink keeps (see [`SinkSpec::schema_history`]).
            pub async fn schema_history(
                &self,
                env: SinkEnv<'_>,
            ) -> Result<Option<Vec<SchemaEvent>>, SinkError> {
                match self { $( Self::$variant(config) => config.schema_history(env).await, )+ }
            }
        }
    };
}

register_sinks! {
    /// Embedded SQLite replica: one table per source table.
    Sqlite = "sqlite" if "sqlite" (SqliteSinkConfig),
    /// Change events appended to local JSON Lines files.
    Jsonl = "jsonl" if "jsonl" (JsonlSinkConfig),
    /// ClickHouse over its HTTP interface: versioned state or a change log.
    Clickhouse = "clickhouse" if "clickhouse" (ClickHouseSinkConfig),
    /// Batches as gzipped JSON Lines or Parquet objects in S3, announced on SQS.
    S3 = "s3" if "s3" (S3SinkConfig),
    /// A re-materialised table per source table in PostgreSQL or CrateDB.
    Postgres = "postgres" if "postgres" (PostgresSinkConfig),
    /// One document per item in Elasticsearch or OpenSearch, versioned.
    Elasticsearch = "elasticsearch" if "elasticsearch" (ElasticsearchSinkConfig),
    /// Keyed change records in a Kafka topic per table.
    Kafka = "kafka" if "kafka" (KafkaSinkConfig),
}

/// The refusal of a `[[sinks]]` entry of type `kind`, whose sink this build
/// lacks for want of `feature`: the entry itself is at fault (empty field).
pub fn not_built(kind: &str, feature: &str) -> InvalidField {
    InvalidField::new(
        "",
        crate::error_text::not_built(&format!("type {kind:?}"), feature),
    )
}

/// The settings of a sink this build was compiled without: any settings
/// are accepted, and [`SinkConfig::validate`] refuses the entry, naming the
/// Cargo feature to build with.
#[derive(Debug, Clone, Default)]
pub struct NotBuilt {
    batch: BatchConfig,
}

impl<'de> Deserialize<'de> for NotBuilt {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Ok(Self::default())
    }
}

impl schemars::JsonSchema for NotBuilt {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NotBuilt".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "A sink this build was compiled without: any settings are accepted here, and `validate` refuses the entry, naming the Cargo feature to build with."
        })
    }
}

impl SinkSpec for NotBuilt {
    type Writer = NotBuilt;

    fn name(&self) -> Option<&str> {
        None
    }

    fn batch(&self) -> &BatchConfig {
        &self.batch
    }

    fn validate(&self) -> Result<(), InvalidField> {
        Ok(())
    }

    fn needs_new_images(&self) -> bool {
        false
    }

    async fn open(&self, env: SinkEnv<'_>) -> Result<Self::Writer, SinkError> {
        Err(SinkError::Fatal {
            sink: env.name.to_owned(),
            message: "this sink is not in this build".to_owned(),
        })
    }
}

impl SinkWriter for NotBuilt {
    async fn write(&mut self, _batch: Batch) -> Result<Vec<Rejected>, SinkError> {
        Err(SinkError::Fatal {
            sink: String::new(),
            message: "this sink is not in this build".to_owned(),
        })
    }
}

impl SinkConfig {
    /// The sink's name in logs and metrics: its `name`, or its type.
    pub fn name(&self) -> String {
        self.spec().name().unwrap_or(self.kind()).to_owned()
    }

    /// The sink's batching settings.
    pub fn batch(&self) -> &BatchConfig {
        self.spec().batch()
    }

    /// Checks the entry, its batch limits included. A sink this build
    /// lacks is refused with an empty field (the entry itself is at fault).
    pub fn validate(&self) -> Result<(), InvalidField> {
        if let Some(feature) = self.missing_feature() {
            return Err(not_built(self.kind(), feature));
        }
        self.spec()
            .batch()
            .validate()
            .map_err(|invalid| invalid.under("batch"))?;
        self.spec().validate()
    }

    /// True when the sink needs new images in the stream.
    pub fn needs_new_images(&self) -> bool {
        self.spec().needs_new_images()
    }
}

/// The object-safe part of [`SinkSpec`], so that one match serves every query.
trait SpecFacts {
    fn name(&self) -> Option<&str>;
    fn batch(&self) -> &BatchConfig;
    fn validate(&self) -> Result<(), InvalidField>;
    fn needs_new_images(&self) -> bool;
}

impl<S: SinkSpec> SpecFacts for S {
    fn name(&self) -> Option<&str> {
        SinkSpec::name(self)
    }
    fn batch(&self) -> &BatchConfig {
        SinkSpec::batch(self)
    }
    fn validate(&self) -> Result<(), InvalidField> {
        SinkSpec::validate(self)
    }
    fn needs_new_images(&self) -> bool {
        SinkSpec::needs_new_images(self)
    }
}

async fn start<S: SinkSpec>(
    config: &S,
    env: SinkEnv<'_>,
    chunks: mpsc::Receiver<Arc<Chunk>>,
    ctx: SinkContext,
) -> Result<SinkTask, SinkError> {
    let writer = config.open(env).await?;
    Ok(Box::pin(run_sink(writer, chunks, ctx)))
}

/// True when `text` is a non-empty run of ASCII letters, digits and underscores
/// (a safe SQL identifier without quoting).
pub fn is_identifier(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks that an optional URL setting starts with `http://` or `https://`.
pub fn check_http_url(field: &str, url: Option<&str>) -> Result<(), InvalidField> {
    match url {
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
            Err(InvalidField::new(
                field,
                format!("{url:?} must start with http:// or https://"),
            ))
        }
        _ => Ok(()),
    }
}
