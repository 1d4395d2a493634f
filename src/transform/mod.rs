//! Transforms applied to change events by the loader: rename, drop, cast and
//! filter, in the configured order; and the enrichment join. [`pattern`]
//! holds AWS Lambda / EventBridge filter patterns matched against stream records.

mod config;
mod enrich;
mod ops;
pub mod pattern;

pub use config::{CastTarget, TransformConfig};
pub use enrich::{load_dimension, Dimension, DimensionFormat};
pub use ops::{apply_transforms, Outcome};
