//! Seeing the engine from outside: Prometheus metrics (named in [`names`],
//! recorded with one line where things happen), per-shard lag computed at
//! scrape time ([`lag`]), the health behind the probes ([`health`]), and
//! the HTTP endpoint that serves them ([`server`]).

pub mod exposition;
pub mod health;
pub mod lag;
pub mod names;
mod process;
pub mod server;

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
