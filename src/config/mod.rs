//! The pipeline configuration file: types, loading with `${ENV}` interpolation, validation.

mod coordinator;
mod dimensions;
mod interpolate;
mod kinesis;
mod load;
mod loader;
mod metrics;
mod reference;
mod schema;
mod sink_entry;
mod types;
mod validate;

pub use coordinator::{CoordinatorConfig, CoordinatorMode};
pub use interpolate::interpolate;
pub use load::{load_file, load_loader_file, parse_loader_str, parse_str};
pub use loader::*;
pub use metrics::MetricsConfig;
pub use reference::reference_markdown;
pub use schema::{definitions, json_schema, json_schema_text, ConfigKind};
pub use sink_entry::SinkEntry;
pub use types::*;

pub use crate::aws::AwsConfig;
pub use crate::dimension::{DimensionConfig, DimensionMode};
pub use crate::secret::Secret;
#[cfg(feature = "clickhouse")]
pub use crate::sink::clickhouse::{ClickHouseMode, ClickHouseSinkConfig};
pub use crate::sink::columns::ColumnMapping;
#[cfg(feature = "jsonl")]
pub use crate::sink::jsonl::JsonlSinkConfig;
#[cfg(feature = "postgres")]
pub use crate::sink::postgres::{PgWriteMethod, PostgresSinkConfig, SqlDialect};
#[cfg(feature = "s3")]
pub use crate::sink::s3::{S3Format, S3SinkConfig};
#[cfg(feature = "sqlite")]
pub use crate::sink::sqlite::SqliteSinkConfig;
pub use crate::sink::{BatchConfig, SinkConfig};
pub use crate::transform::{CastTarget, EnrichConfig, FilterSpec, JoinConfig, TransformConfig};

use std::path::PathBuf;

/// A configuration problem, naming the file, the field and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The configuration file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{file}: line {line}: {message}")]
    Syntax {
        /// The configuration file.
        file: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// What the TOML parser said.
        message: String,
    },
    /// A field is missing, unknown, of the wrong type or out of range.
    #[error("{file}: {field}: {message}")]
    Field {
        /// The configuration file.
        file: PathBuf,
        /// Dotted path of the field (`tables[0].start_position`).
        field: String,
        /// What is wrong.
        message: String,
    },
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_stages;
