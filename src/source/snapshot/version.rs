//! How snapshot rows are versioned: above every earlier sequence number
//! (DynamoDB Streams) or from the clock (Kinesis time versions).

use std::time::Duration;

use super::runner::{SnapshotContext, SnapshotError};
use crate::model::SequenceNumber;

/// How a snapshot's rows are versioned, by source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotVersions {
    /// DynamoDB Streams: one above the highest sequence number the table
    /// reached in earlier runs (0 on a first run); every later change has a
    /// higher sequence number.
    AboveSequences,
    /// Kinesis: the Scan's start time less [`CLOCK_SKEW_MARGIN`], as a time
    /// version (`decode::kinesis`). Every change made after the Scan began
    /// carries a later creation time, so it wins over the scanned row.
    FromClock,
}

/// How far this machine's clock may run ahead of DynamoDB's: snapshot
/// versions from the clock are this much earlier than the Scan's start.
pub const CLOCK_SKEW_MARGIN: Duration = Duration::from_secs(5);

pub(super) async fn snapshot_version(
    ctx: &SnapshotContext,
) -> Result<SequenceNumber, SnapshotError> {
    match ctx.versions {
        SnapshotVersions::AboveSequences => match ctx
            .state
            .highest_sequence(&ctx.table.name)
            .await
            .map_err(|e| ctx.store_error(e))?
        {
            Some(highest) => highest.successor(),
            None => SequenceNumber::parse("0"),
        }
        .map_err(|e| ctx.store_error(e)),
        SnapshotVersions::FromClock => {
            let now = std::time::SystemTime::now()
                .checked_sub(CLOCK_SKEW_MARGIN)
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .ok_or_else(|| ctx.store_error("the clock is before 1970"))?;
            let micros = u64::try_from(now.as_micros()).map_err(|e| ctx.store_error(e))?;
            crate::model::time_version(micros, 0).map_err(|e| ctx.store_error(e))
        }
    }
}
