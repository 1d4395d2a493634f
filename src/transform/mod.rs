//! The transform stage every path shares (run, snapshot, replay, load):
//! AWS Lambda / EventBridge filter patterns ([`pattern`]), projections
//! (rename, drop, include, cast, computed attributes, old-image removal),
//! the enrichment joins, and the routing of tables to sinks ([`Routes`]).

mod apply_error;
mod config;
mod enrich;
mod explain;
mod ops;
pub mod pattern;
mod routes;
mod stage;
mod template;

pub use apply_error::{ApplyError, CastError};
pub use config::{
    CastTarget, EnrichConfig, FilterSpec, JoinConfig, TransformConfig, ENRICH_DIMENSION,
};
pub use enrich::{Join, JoinReport};
pub use explain::{Explanation, SinkReport, StageReport, StageResult};
pub use ops::{Outcome, TransformError, Transforms};
pub use routes::{FilteredCounter, Routes, SinkRoute};
pub use stage::{Stage, StageError, Verdict};
pub use template::Template;
