//! Whether a table needs a snapshot before streaming (pure decision logic).

use crate::config::SnapshotMode;
use crate::coordinator::{SnapshotPhase, SnapshotRecord};

/// What to do before streaming a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Stream right away.
    Skip,
    /// Continue the snapshot a previous run began.
    Resume,
    /// Begin a snapshot.
    Start {
        /// Drop the table's checkpoints first: they point at lost changes.
        clear_checkpoints: bool,
        /// Why, for the log.
        reason: String,
    },
}

/// The facts the decision rests on.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The table's configured mode.
    pub mode: SnapshotMode,
    /// `dynamo-cdc snapshot` asked for one now.
    pub forced: bool,
    /// The stored snapshot, if any.
    pub record: Option<&'a SnapshotRecord>,
    /// The stream followed now.
    pub stream_arn: &'a str,
    /// The table has any checkpoint (any stream).
    pub has_checkpoints: bool,
    /// Changes after the checkpoints are known to be lost, and why.
    pub lost: Option<String>,
}

/// Decides; with `lost` set and no snapshot to repair it, the caller keeps
/// its usual trim policy (halt or skip).
pub fn decide(facts: &Facts<'_>) -> Decision {
    if let Some(record) = facts.record {
        match &record.phase {
            SnapshotPhase::Running if record.stream_arn.as_deref() == Some(facts.stream_arn) => {
                return Decision::Resume;
            }
            SnapshotPhase::Running => {
                return Decision::Start {
                    clear_checkpoints: true,
                    reason:
                        "an unfinished snapshot recorded positions in a stream that was replaced"
                            .into(),
                }
            }
            SnapshotPhase::Needed { reason } => {
                return Decision::Start {
                    clear_checkpoints: true,
                    reason: reason.clone(),
                }
            }
            SnapshotPhase::Done => {}
        }
    }
    if facts.forced {
        return Decision::Start {
            clear_checkpoints: facts.lost.is_some(),
            reason: "requested with `dynamo-cdc snapshot`".into(),
        };
    }
    if facts.mode == SnapshotMode::WhenNeeded {
        if let Some(lost) = &facts.lost {
            return Decision::Start {
                clear_checkpoints: true,
                reason: lost.clone(),
            };
        }
    }
    let first_run = !facts.has_checkpoints && facts.record.is_none();
    if first_run && facts.mode != SnapshotMode::Never {
        return Decision::Start {
            clear_checkpoints: false,
            reason: "the table has no checkpoint yet".into(),
        };
    }
    Decision::Skip
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(mode: SnapshotMode) -> Facts<'static> {
        Facts {
            mode,
            forced: false,
            record: None,
            stream_arn: "arn:s",
            has_checkpoints: false,
            lost: None,
        }
    }

    fn record(phase: SnapshotPhase, stream: &str) -> SnapshotRecord {
        SnapshotRecord {
            phase,
            stream_arn: Some(stream.into()),
            version: None,
            segments: Vec::new(),
            started_at_ms: None,
        }
    }

    #[test]
    fn first_runs_snapshot_unless_never() {
        assert_eq!(decide(&facts(SnapshotMode::Never)), Decision::Skip);
        for mode in [SnapshotMode::Initial, SnapshotMode::WhenNeeded] {
            assert!(matches!(
                decide(&facts(mode)),
                Decision::Start {
                    clear_checkpoints: false,
                    ..
                }
            ));
        }
        let mut later = facts(SnapshotMode::Initial);
        later.has_checkpoints = true;
        assert_eq!(decide(&later), Decision::Skip);
        let done = record(SnapshotPhase::Done, "arn:s");
        let mut after_snapshot = facts(SnapshotMode::Initial);
        after_snapshot.record = Some(&done);
        assert_eq!(decide(&after_snapshot), Decision::Skip);
    }

    #[test]
    fn lost_changes_resnapshot_only_when_needed() {
        let mut lost = facts(SnapshotMode::Initial);
        lost.has_checkpoints = true;
        lost.lost = Some("trimmed".into());
        assert_eq!(decide(&lost), Decision::Skip);
        lost.mode = SnapshotMode::WhenNeeded;
        assert_eq!(
            decide(&lost),
            Decision::Start {
                clear_checkpoints: true,
                reason: "trimmed".into()
            }
        );
    }

    #[test]
    fn unfinished_snapshots_resume_on_the_same_stream() {
        let running = record(SnapshotPhase::Running, "arn:s");
        let mut resumed = facts(SnapshotMode::Never);
        resumed.record = Some(&running);
        assert_eq!(decide(&resumed), Decision::Resume);
        let elsewhere = record(SnapshotPhase::Running, "arn:old");
        resumed.record = Some(&elsewhere);
        assert!(matches!(
            decide(&resumed),
            Decision::Start {
                clear_checkpoints: true,
                ..
            }
        ));
        let needed = record(
            SnapshotPhase::Needed {
                reason: "trimmed".into(),
            },
            "arn:s",
        );
        resumed.record = Some(&needed);
        assert!(matches!(decide(&resumed), Decision::Start { .. }));
    }

    #[test]
    fn forced_snapshots_always_start() {
        let done = record(SnapshotPhase::Done, "arn:s");
        let mut forced = facts(SnapshotMode::Never);
        forced.forced = true;
        forced.has_checkpoints = true;
        forced.record = Some(&done);
        assert!(matches!(
            decide(&forced),
            Decision::Start {
                clear_checkpoints: false,
                ..
            }
        ));
    }
}
