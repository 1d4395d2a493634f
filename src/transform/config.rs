//! The transform settings: `filters` (AWS Lambda filter patterns) and
//! `transforms` (projections), as a table, a sink or the loader lists them.

use std::time::Duration;

use serde::Deserialize;

use crate::dimension::{DimensionConfig, DimensionMode};
use crate::model::Op;

/// One filter pattern as configured: JSON text, exactly as AWS Lambda's
/// `FilterCriteria` takes it (numbers keep every digit, repeated keys are
/// ANDed), or the same pattern written as a TOML table.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum FilterSpec {
    /// `'{"eventName": ["INSERT"]}'`.
    Text(String),
    /// `{ eventName = ["INSERT"] }`.
    Table(serde_json::Value),
}

/// One transform.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TransformConfig {
    /// Renames an attribute of the images.
    Rename {
        /// Current name.
        from: String,
        /// New name.
        to: String,
    },
    /// Removes attributes from the images (key attributes stay).
    #[serde(alias = "exclude")]
    Drop {
        /// Names to remove.
        attributes: Vec<String>,
    },
    /// Keeps only these attributes (and the key attributes) in the images.
    Include {
        /// Names to keep.
        attributes: Vec<String>,
    },
    /// Converts a string attribute to a number or a timestamp (epoch number).
    Cast {
        /// The attribute.
        attribute: String,
        /// Target.
        to: CastTarget,
    },
    /// Sets a string attribute computed from a template over the same
    /// image: `"{first} {last}"`; `{{` and `}}` are literal braces. When a
    /// named attribute is missing or not a scalar (S, N, BOOL), the
    /// attribute is not set in that image.
    Set {
        /// The attribute to set (replaced when present).
        attribute: String,
        /// The template.
        template: String,
    },
    /// Removes the old image (what the item was before the change).
    DropOldImage,
    /// Keeps (or, with `exclude`, drops) the changes that match every given condition.
    Filter {
        /// Operations (`insert`, `modify`, `remove`); any when empty.
        #[serde(default)]
        ops: Vec<Op>,
        /// Source tables; any when empty.
        #[serde(default)]
        tables: Vec<String>,
        /// Attribute of the new image (old image for removes) to test.
        field: Option<String>,
        /// Text the field must equal (S, N text, or `true`/`false`); with no
        /// `equals`, the field must merely exist.
        equals: Option<String>,
        /// Drop the matching changes instead of keeping them.
        #[serde(default)]
        exclude: bool,
    },
}

impl TransformConfig {
    /// The `type` of the entry, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Rename { .. } => "rename",
            Self::Drop { .. } => "drop",
            Self::Include { .. } => "include",
            Self::Cast { .. } => "cast",
            Self::Set { .. } => "set",
            Self::DropOldImage => "drop_old_image",
            Self::Filter { .. } => "filter",
        }
    }
}

/// What `cast` converts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CastTarget {
    /// A number (from decimal text).
    Number,
    /// Epoch milliseconds (from an RFC 3339 string).
    TimestampMs,
    /// Epoch seconds (from an RFC 3339 string).
    TimestampS,
}

/// The enrichment join.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// Local path or `s3://bucket/key` of a `.parquet`, `.csv` or `.jsonl` file.
    pub path: String,
    /// Key column of the dimension table.
    pub key: String,
    /// Attribute of the change joined on the key.
    pub field: String,
    /// Dimension columns added to the change.
    pub columns: Vec<String>,
    /// Prefix of the added attributes' names.
    #[serde(default)]
    pub prefix: String,
    /// How often to check whether the file changed (and reload it).
    #[serde(default = "default_reload", with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub reload_interval: Duration,
}

fn default_reload() -> Duration {
    crate::dimension::config::default_reload()
}

/// The name the `[enrich]` table has among the dimensions.
pub const ENRICH_DIMENSION: &str = "enrich";

impl EnrichConfig {
    /// The `[enrich]` table as a dimension named [`ENRICH_DIMENSION`]
    /// (indexed in `auto` mode).
    pub fn dimension(&self) -> DimensionConfig {
        DimensionConfig {
            name: ENRICH_DIMENSION.into(),
            path: self.path.clone(),
            key: vec![self.key.clone()],
            columns: self.columns.clone(),
            mode: DimensionMode::Auto,
            memory_budget_mb: crate::dimension::config::default_memory_budget_mb(),
            reload_interval: self.reload_interval,
            index_dir: None,
        }
    }

    /// The `[enrich]` join every table gets.
    pub fn join(&self) -> JoinConfig {
        JoinConfig {
            dimension: ENRICH_DIMENSION.into(),
            on: vec![self.field.clone()],
            prefix: self.prefix.clone(),
            columns: None,
        }
    }
}

/// One join of a table's changes against a dimension table
/// (`[[tables]] enrich = [{ dimension = "customers", on = "customer_id" }]`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinConfig {
    /// The `[[dimensions]]` entry joined.
    pub dimension: String,
    /// The change's attribute(s) matched, part by part, against the
    /// dimension's key column(s): one name, or a list for a composite key.
    #[serde(deserialize_with = "crate::dimension::config::one_or_many")]
    #[schemars(with = "crate::json_schema::OneOrMany")]
    pub on: Vec<String>,
    /// Prefix of the added attributes' names.
    #[serde(default)]
    pub prefix: String,
    /// The dimension columns this join adds (default: all of them).
    pub columns: Option<Vec<String>>,
}
