//! Wall-clock time as the engine records it (checkpoints, schema history,
//! leases, synthetic creation times).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: 0 when the clock reads before 1970,
/// `i64::MAX` past the year 292 million.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
