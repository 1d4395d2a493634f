//! When a sink writes: the `[sinks.batch]` limits the driver closes batches at.

use std::time::Duration;

use serde::Deserialize;

use super::registry::InvalidField;

/// When a sink writes: a batch closes at whichever limit comes first.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Records per batch (a source page is never split, so a batch may exceed it by one page).
    pub max_records: usize,
    /// Approximate bytes per batch (DynamoDB's record sizes).
    pub max_bytes: u64,
    /// Longest time the oldest record waits for its batch to close.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub max_age: Duration,
    /// Longest backoff between retries of a failed write.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub max_retry_backoff: Duration,
    /// How long the sink may keep failing before `/readyz` reports the
    /// engine unready (it keeps retrying either way).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub unready_after: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_records: 5000,
            max_bytes: 8 * 1024 * 1024,
            max_age: Duration::from_millis(100),
            max_retry_backoff: Duration::from_secs(30),
            unready_after: Duration::from_secs(60),
        }
    }
}

impl BatchConfig {
    /// Checks the limits; fields are named relative to the `batch` table.
    pub fn validate(&self) -> Result<(), InvalidField> {
        if self.max_records == 0 {
            return Err(InvalidField::new("max_records", "must be above zero"));
        }
        if self.max_bytes == 0 {
            return Err(InvalidField::new("max_bytes", "must be above zero"));
        }
        if self.max_retry_backoff.is_zero() {
            return Err(InvalidField::new("max_retry_backoff", "must be above zero"));
        }
        Ok(())
    }
}
