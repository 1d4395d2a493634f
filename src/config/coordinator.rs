//! `[coordinator]`: who reads which shards — one process (embedded, the
//! default), or many workers sharing a DynamoDB lease table.

use std::time::Duration;

use serde::Deserialize;

use super::validate::{invalid, Invalid};

/// How shards are shared among processes.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CoordinatorMode {
    /// One process reads every shard; checkpoints in `state_dir` (default).
    #[default]
    Embedded,
    /// Many workers share the shards through a DynamoDB lease table.
    LeaseTable,
}

/// The `[coordinator]` section.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CoordinatorConfig {
    /// Embedded or lease table.
    pub mode: CoordinatorMode,
    /// The lease table's name (created when missing, on-demand billing).
    pub lease_table: String,
    /// This worker's id in the lease table; default `<hostname>-<pid>`.
    pub worker_id: Option<String>,
    /// How long a lease lives without a renewal: the failover time.
    /// Leases are renewed every third of it.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub lease_duration: Duration,
    /// At most this many live leases taken from busier workers per renew period.
    pub max_steals_per_cycle: usize,
    /// How often, between renewals, a worker looks for unowned leases (a
    /// stopping worker's) and expired ones, with an eventually consistent
    /// Scan; `0s`: only at renewals. Each look reads the whole lease table.
    /// A dead worker's last renewal is seen at most this late, so its
    /// shards move within `lease_duration` plus this of that renewal.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub handover_check_interval: Duration,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            mode: CoordinatorMode::Embedded,
            lease_table: "dynamo-cdc-leases".to_owned(),
            worker_id: None,
            lease_duration: Duration::from_secs(10),
            max_steals_per_cycle: 5,
            handover_check_interval: Duration::from_secs(1),
        }
    }
}

impl CoordinatorConfig {
    /// This worker's id: `worker_id`, or `<hostname>-<pid>`.
    pub fn worker(&self) -> String {
        self.worker_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "worker".to_owned());
            format!("{host}-{}", std::process::id())
        })
    }
}

/// Checks the `[coordinator]` section (and what it rules out elsewhere).
pub(super) fn validate_coordinator(config: &CoordinatorConfig) -> Result<(), Invalid> {
    if config.lease_duration < Duration::from_secs(3) {
        return Err(invalid(
            "coordinator.lease_duration",
            "must be at least 3s (leases are renewed every third of it)",
        ));
    }
    if config.mode == CoordinatorMode::LeaseTable {
        let name = &config.lease_table;
        let valid = (3..=255).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return Err(invalid(
                "coordinator.lease_table",
                format!("{name:?} is not a DynamoDB table name (3-255 of a-z, A-Z, 0-9, _ - .)"),
            ));
        }
    }
    if config
        .worker_id
        .as_deref()
        .is_some_and(|w| w.trim().is_empty())
    {
        return Err(invalid("coordinator.worker_id", "must not be empty"));
    }
    Ok(())
}
