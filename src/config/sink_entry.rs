//! A `[[sinks]]` entry: the sink's own settings (picked by `type`) plus
//! what every sink may set, which tables reach it and its own filters and
//! transforms.

use std::collections::HashSet;

use serde::Deserialize;

use crate::sink::SinkConfig;
use crate::transform::{FilterSpec, SinkRoute, Stage, StageError, TransformConfig};

/// One destination with its routing.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct SinkEntry {
    /// Source tables whose changes reach this sink; every table when unset.
    pub tables: Option<Vec<String>>,
    /// Filter patterns of this sink, after the table's (ORed; none passes everything).
    #[serde(default)]
    pub filters: Vec<FilterSpec>,
    /// Transforms of this sink, after the table's.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    /// The sink itself.
    #[serde(flatten)]
    pub sink: SinkConfig,
}

impl SinkEntry {
    /// The sink's name in logs and metrics.
    pub fn name(&self) -> String {
        self.sink.name()
    }

    /// The compiled route: tables, filters and transforms.
    pub fn route(&self) -> Result<SinkRoute, StageError> {
        Ok(SinkRoute {
            name: self.name(),
            tables: self
                .tables
                .as_ref()
                .map(|names| names.iter().cloned().collect::<HashSet<_>>()),
            stage: Stage::compile(&self.filters, &self.transforms)?,
        })
    }
}
