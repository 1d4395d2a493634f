//! `dynamo-cdc load` in a build without the `s3` feature: the loader reads
//! S3 objects announced on SQS, so this build refuses to start it.

use super::EngineError;
use crate::config::LoaderConfig;
use crate::stats::StatsSnapshot;

/// How a load run behaves.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Exit once a receive finds the queue empty and everything received is loaded.
    pub exit_when_idle: bool,
}

/// What a finished load run did.
#[derive(Debug, Clone)]
pub struct LoadSummary {
    /// Objects loaded (messages deleted after the sinks acknowledged them).
    pub objects: u64,
    /// Objects moved to the dead-letter prefix.
    pub dead_objects: u64,
    /// Counters.
    pub stats: StatsSnapshot,
}

/// Refuses to run: the loader is not in this build.
pub async fn run_loader(
    _config: &LoaderConfig,
    _options: LoadOptions,
) -> Result<LoadSummary, EngineError> {
    Err(EngineError::Config(crate::error_text::not_built(
        "the loader (dynamo-cdc load)",
        "s3",
    )))
}
