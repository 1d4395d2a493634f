//! The `[[dimensions]]` settings: where a dimension table's file is, its
//! key, the columns joins may add, and how it is indexed.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// One dimension table, loaded once however many joins use it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DimensionConfig {
    /// The name joins refer to (`[[tables]] enrich = [{ dimension = NAME, … }]`).
    pub name: String,
    /// Local path or `s3://bucket/key` of a `.parquet`, `.csv` or `.jsonl` file.
    pub path: String,
    /// Key column, or key columns for a composite key (`["region", "id"]`);
    /// a row's key must be unique (a file with a duplicate key is refused).
    #[serde(deserialize_with = "one_or_many")]
    #[schemars(with = "crate::json_schema::OneOrMany")]
    pub key: Vec<String>,
    /// Columns joins may add, in this order.
    pub columns: Vec<String>,
    /// `auto` (default): in memory when the table fits `memory_budget_mb`,
    /// else on disk; `memory` or `disk` to choose.
    #[serde(default)]
    pub mode: DimensionMode,
    /// Largest in-memory index `auto` builds, in MiB (default 256).
    #[serde(default = "default_memory_budget_mb")]
    pub memory_budget_mb: u64,
    /// How often the file is checked for a new version (size, modification
    /// time, ETag); a new index is built aside and swapped in.
    #[serde(default = "default_reload", with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub reload_interval: Duration,
    /// Where disk indexes are built and kept (default: `state_dir/dimensions`).
    /// An index that still matches its file is reused at start.
    pub index_dir: Option<PathBuf>,
}

/// Where a dimension table's index lives.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DimensionMode {
    /// In memory when it fits the memory budget, else on disk.
    #[default]
    Auto,
    /// In memory, columnar, whatever its size.
    Memory,
    /// On disk, memory-mapped (LMDB), whatever its size.
    Disk,
}

impl DimensionMode {
    /// The mode's name as configured.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Memory => "memory",
            Self::Disk => "disk",
        }
    }
}

/// The default memory budget of `auto`, in MiB.
pub fn default_memory_budget_mb() -> u64 {
    256
}

/// The default reload check interval.
pub fn default_reload() -> Duration {
    Duration::from_secs(60)
}

/// Reads `"a"` or `["a", "b"]` as a list.
pub fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}
