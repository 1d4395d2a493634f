//! The transform stage every path shares (run, snapshot, replay, load):
//! AWS Lambda / EventBridge filter patterns ([`pattern`]), projections
//! (rename, drop, include, cast, computed attributes, old-image removal),
//! the enrichment join, and the routing of tables to sinks ([`Routes`]).

mod config;
mod enrich;
mod enrichment;
mod explain;
mod ops;
pub mod pattern;
mod routes;
mod stage;
mod template;

pub use config::{CastTarget, EnrichConfig, FilterSpec, TransformConfig};
pub use enrich::{load_dimension, Dimension, DimensionFormat};
pub use enrichment::Enrichment;
pub use explain::{Explanation, SinkReport, StageReport, StageResult};
pub use ops::{Outcome, TransformError, Transforms};
pub use routes::{FilteredCounter, Routes, SinkRoute};
pub use stage::{Stage, StageError, Verdict};
pub use template::Template;
