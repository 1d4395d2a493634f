//! Seeing the engine from outside: per-shard lag computed at scrape time
//! ([`lag`]), the health behind the probes ([`health`]), process figures
//! ([`process`]) and the exposition parser ([`exposition`]). Metric names
//! live in [`crate::metric_names`]; the endpoint in `app::metrics_server`.

pub mod exposition;
pub mod health;
pub mod lag;
pub mod process;

pub use health::{Health, NotReady};
pub use lag::LagBoard;

/// What readers, sinks and the engine report to: readiness and lag. Always
/// present (cheap); served only when `[metrics] listen` is set.
#[derive(Debug, Default)]
pub struct Probes {
    /// Start-up, sources, sinks.
    pub health: Health,
    /// What each reader last saw of its shard.
    pub lag: LagBoard,
}
