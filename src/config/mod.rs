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
