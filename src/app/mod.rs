//! Wiring: builds sources, sinks, the ack tracker and the checkpoint writer
//! from a configuration, runs them, and shuts them down in order.

mod checkpointer;
mod dimension;
mod engine;
mod error;
mod filter_test;
#[cfg(feature = "s3")]
mod loader;
#[cfg(not(feature = "s3"))]
#[path = "loader_without_s3.rs"]
mod loader;
mod metrics_server;
mod ownership;
mod pipeline;
mod progress;
mod replay;
mod replay_error;
mod replay_input;
mod signals;
mod sinks;
mod store_error;
#[cfg(feature = "s3")]
mod stores;
#[cfg(not(feature = "s3"))]
#[path = "stores_without_s3.rs"]
mod stores;
mod view_check;

pub use engine::{run, RunOptions, RunSummary};
pub use error::EngineError;
pub use filter_test::{run_filter_test, FilterTestConfig, FilterTestEntry, FilterTestOptions};
pub use loader::{run_loader, LoadOptions, LoadSummary};
pub use replay::{run_replay, ReplayOptions, ReplaySummary};

/// Creates the state directory (checkpoints, dead letters) when missing.
fn create_state_dir(dir: &std::path::Path) -> Result<(), EngineError> {
    std::fs::create_dir_all(dir).map_err(|source| EngineError::StateDir {
        path: dir.display().to_string(),
        source,
    })
}
