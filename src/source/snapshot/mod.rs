//! Table snapshots (backfill) with a gap-free handoff to the stream: record
//! the stream positions, Scan the table in parallel segments within a read
//! budget, deliver the items as `read` events versioned below every later
//! stream change, store each segment's progress, then stream on.

mod pacer;
pub mod plan;
mod positions;
mod progress;
mod runner;
pub mod scan;
mod segment;
mod version;

pub use plan::{decide, Decision, Facts};
pub use runner::{begin, resume, Outcome, SnapshotContext, SnapshotError};
pub use version::{SnapshotVersions, CLOCK_SKEW_MARGIN};
