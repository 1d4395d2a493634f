//! Snapshot state in the checkpoint store: per table the snapshot's phase
//! and version, per Scan segment how far it got (`LastEvaluatedKey`), and the
//! highest sequence number a table ever reached (kept across resets).

use rusqlite::{params, OptionalExtension};

use super::store::{CheckpointStore, StoreError};
use crate::clock::now_ms;
use crate::model::SequenceNumber;

/// Tables of the snapshot state (created with the checkpoint store).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS snapshots (
    table_name     TEXT PRIMARY KEY,
    state          TEXT NOT NULL,
    reason         TEXT,
    stream_arn     TEXT,
    version        TEXT,
    total_segments INTEGER,
    started_at_ms  INTEGER,
    finished_at_ms INTEGER
);
CREATE TABLE IF NOT EXISTS snapshot_segments (
    table_name TEXT NOT NULL,
    segment    INTEGER NOT NULL,
    last_key   TEXT,
    done       INTEGER NOT NULL DEFAULT 0,
    items      INTEGER NOT NULL DEFAULT 0,
    pages      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (table_name, segment)
);
CREATE TABLE IF NOT EXISTS sequence_floors (
    table_name TEXT PRIMARY KEY,
    sequence   TEXT NOT NULL
);
";

/// Where a table's snapshot stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotPhase {
    /// A snapshot must run before streaming resumes (changes were lost).
    Needed {
        /// Why.
        reason: String,
    },
    /// Positions are recorded and segments are being scanned.
    Running,
    /// Finished: streaming continues from the recorded positions.
    Done,
}

/// How far one Scan segment got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentProgress {
    /// Segment number (0-based).
    pub segment: u32,
    /// The `LastEvaluatedKey` of the last page whose items every sink
    /// acknowledged, as DynamoDB JSON; `None` before the first page.
    pub last_key: Option<String>,
    /// Every page of the segment is acknowledged.
    pub done: bool,
    /// Items acknowledged so far.
    pub items: u64,
    /// Pages acknowledged so far.
    pub pages: u64,
}

/// A table's stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// Phase.
    pub phase: SnapshotPhase,
    /// The stream whose positions were recorded (running/done).
    pub stream_arn: Option<String>,
    /// The version every snapshot row carries (running/done).
    pub version: Option<SequenceNumber>,
    /// Segments, in order (running/done).
    pub segments: Vec<SegmentProgress>,
    /// When the snapshot started, milliseconds since the Unix epoch.
    pub started_at_ms: Option<i64>,
}

/// What starting a snapshot records, in one transaction.
#[derive(Debug, Clone)]
pub struct SnapshotStart<'a> {
    /// Source table.
    pub table: &'a str,
    /// The stream followed after the snapshot.
    pub stream_arn: &'a str,
    /// Version of the snapshot rows.
    pub version: &'a SequenceNumber,
    /// Parallel Scan segments.
    pub total_segments: u32,
    /// Drop the table's checkpoints first (they point at lost changes).
    pub clear_checkpoints: bool,
    /// Shards closed when the snapshot started: their changes are all in
    /// the snapshot, so they are recorded as finished and never read.
    pub closed_shards: &'a [String],
}

impl CheckpointStore {
    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The stored snapshot of `table`, if any.
    pub fn snapshot(&self, table: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT state, reason, stream_arn, version, started_at_ms FROM snapshots WHERE table_name = ?1",
                [table],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, Option<String>>(3)?,
                        row.get::<_, Option<i64>>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((state, reason, stream_arn, version, started_at_ms)) = row else {
            return Ok(None);
        };
        let phase = match state.as_str() {
            "needed" => SnapshotPhase::Needed {
                reason: reason.unwrap_or_default(),
            },
            "running" => SnapshotPhase::Running,
            "done" => SnapshotPhase::Done,
            other => {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    shard: format!("snapshot of {table}"),
                    message: format!("unknown snapshot state {other:?}"),
                })
            }
        };
        let version = version
            .map(|v| {
                SequenceNumber::parse(&v).map_err(|e| StoreError::Corrupt {
                    path: self.path.clone(),
                    shard: format!("snapshot of {table}"),
                    message: e.to_string(),
                })
            })
            .transpose()?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT segment, last_key, done, items, pages FROM snapshot_segments
                 WHERE table_name = ?1 ORDER BY segment",
            )
            .map_err(|e| self.err(e))?;
        let segments = stmt
            .query_map([table], |row| {
                Ok(SegmentProgress {
                    segment: row.get(0)?,
                    last_key: row.get(1)?,
                    done: row.get(2)?,
                    items: row.get::<_, i64>(3)?.try_into().unwrap_or(0),
                    pages: row.get::<_, i64>(4)?.try_into().unwrap_or(0),
                })
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(Some(SnapshotRecord {
            phase,
            stream_arn,
            version,
            segments,
            started_at_ms,
        }))
    }

    /// The highest sequence number `table` ever reached here: over its
    /// checkpoints (every stream) and what resets kept.
    pub fn highest_sequence(&self, table: &str) -> Result<Option<SequenceNumber>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT sequence FROM checkpoints WHERE table_name = ?1 AND sequence IS NOT NULL
                 UNION ALL SELECT start_at FROM checkpoints WHERE table_name = ?1 AND start_at IS NOT NULL
                 UNION ALL SELECT sequence FROM sequence_floors WHERE table_name = ?1",
            )
            .map_err(|e| self.err(e))?;
        let texts = stmt
            .query_map([table], |row| row.get::<_, String>(0))
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        let mut highest: Option<SequenceNumber> = None;
        for text in texts {
            let sequence = SequenceNumber::parse(&text).map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                shard: format!("a checkpoint of {table}"),
                message: e.to_string(),
            })?;
            if highest.as_ref().is_none_or(|h| sequence > *h) {
                highest = Some(sequence);
            }
        }
        Ok(highest)
    }

    /// Forgets `table`'s checkpoints and snapshot, keeping its highest
    /// sequence number; returns how many checkpoints went.
    pub(super) fn clear_table(&mut self, table: &str) -> Result<usize, StoreError> {
        let highest = self.highest_sequence(table)?;
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        let deleted = clear_in(&tx, table, highest.as_ref()).map_err(err)?;
        tx.execute(
            "DELETE FROM snapshot_segments WHERE table_name = ?1",
            [table],
        )
        .map_err(err)?;
        tx.execute("DELETE FROM snapshots WHERE table_name = ?1", [table])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(deleted)
    }

    /// Records that `table` must be snapshotted before it streams again.
    pub fn request_snapshot(&mut self, table: &str, reason: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO snapshots (table_name, state, reason) VALUES (?1, 'needed', ?2)
                 ON CONFLICT (table_name) DO UPDATE SET state = 'needed', reason = excluded.reason",
                params![table, reason],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Starts a snapshot: (optionally) drops the table's checkpoints, marks
    /// the closed shards finished and creates the segment rows, in one
    /// transaction.
    pub fn begin_snapshot(&mut self, start: &SnapshotStart<'_>) -> Result<(), StoreError> {
        let highest = self.highest_sequence(start.table)?;
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let now = now_ms();
        let tx = self.conn.transaction().map_err(err)?;
        if start.clear_checkpoints {
            clear_in(&tx, start.table, highest.as_ref()).map_err(err)?;
        }
        tx.execute(
            "DELETE FROM snapshot_segments WHERE table_name = ?1",
            [start.table],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO snapshots (table_name, state, reason, stream_arn, version, total_segments, started_at_ms)
             VALUES (?1, 'running', NULL, ?2, ?3, ?4, ?5)
             ON CONFLICT (table_name) DO UPDATE SET state = 'running', reason = NULL,
                stream_arn = excluded.stream_arn, version = excluded.version,
                total_segments = excluded.total_segments, started_at_ms = excluded.started_at_ms,
                finished_at_ms = NULL",
            params![
                start.table,
                start.stream_arn,
                start.version.as_str(),
                start.total_segments,
                now
            ],
        )
        .map_err(err)?;
        for segment in 0..start.total_segments {
            tx.execute(
                "INSERT INTO snapshot_segments (table_name, segment) VALUES (?1, ?2)",
                params![start.table, segment],
            )
            .map_err(err)?;
        }
        for shard in start.closed_shards {
            tx.execute(
                "INSERT INTO checkpoints (stream_arn, shard_id, table_name, sequence, finished, updated_at_ms)
                 VALUES (?1, ?2, ?3, NULL, 1, ?4)
                 ON CONFLICT (stream_arn, shard_id) DO UPDATE SET finished = 1, updated_at_ms = excluded.updated_at_ms",
                params![start.stream_arn, shard, start.table, now],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Stores one segment's progress.
    pub fn save_segment(
        &mut self,
        table: &str,
        progress: &SegmentProgress,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE snapshot_segments SET last_key = ?3, done = ?4, items = ?5, pages = ?6
                 WHERE table_name = ?1 AND segment = ?2",
                params![
                    table,
                    progress.segment,
                    progress.last_key,
                    progress.done,
                    i64::try_from(progress.items).unwrap_or(i64::MAX),
                    i64::try_from(progress.pages).unwrap_or(i64::MAX)
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records that reading `shard` starts at `sequence` (inclusive): the
    /// first change a snapshot saw arrive after it started. Replaces an
    /// older checkpoint of the shard, whose later changes the snapshot holds.
    pub fn set_start_at(
        &mut self,
        table: &str,
        stream_arn: &str,
        shard: &str,
        sequence: &SequenceNumber,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO checkpoints (stream_arn, shard_id, table_name, sequence, finished, updated_at_ms, start_at)
                 VALUES (?1, ?2, ?3, NULL, 0, ?4, ?5)
                 ON CONFLICT (stream_arn, shard_id) DO UPDATE SET sequence = NULL,
                    start_at = excluded.start_at, updated_at_ms = excluded.updated_at_ms",
                params![stream_arn, shard, table, now_ms(), sequence.as_str()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Marks `table`'s snapshot finished.
    pub fn finish_snapshot(&mut self, table: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE snapshots SET state = 'done', finished_at_ms = ?2 WHERE table_name = ?1",
                params![table, now_ms()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

/// Deletes `table`'s checkpoints inside `tx`, keeping `highest` as its floor.
fn clear_in(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    highest: Option<&SequenceNumber>,
) -> Result<usize, rusqlite::Error> {
    if let Some(highest) = highest {
        tx.execute(
            "INSERT INTO sequence_floors (table_name, sequence) VALUES (?1, ?2)
             ON CONFLICT (table_name) DO UPDATE SET sequence = excluded.sequence",
            params![table, highest.as_str()],
        )?;
    }
    tx.execute("DELETE FROM checkpoints WHERE table_name = ?1", [table])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::{CheckpointUpdate, ShardKey};
    use std::sync::Arc;

    fn seq(text: &str) -> SequenceNumber {
        SequenceNumber::parse(text).expect("sequence")
    }

    fn store() -> (tempfile::TempDir, CheckpointStore) {
        let dir = tempfile::tempdir().expect("dir");
        let store = CheckpointStore::open(&CheckpointStore::path_in(dir.path())).expect("open");
        (dir, store)
    }

    #[test]
    fn snapshot_lifecycle_is_stored() {
        let (_dir, mut store) = store();
        assert_eq!(store.snapshot("orders").expect("read"), None);
        store
            .begin_snapshot(&SnapshotStart {
                table: "orders",
                stream_arn: "arn:s",
                version: &seq("0"),
                total_segments: 2,
                clear_checkpoints: false,
                closed_shards: &["old".to_owned()],
            })
            .expect("begin");
        let progress = SegmentProgress {
            segment: 1,
            last_key: Some("{\"pk\":{\"S\":\"k\"}}".into()),
            done: false,
            items: 10,
            pages: 2,
        };
        store.save_segment("orders", &progress).expect("save");
        store
            .set_start_at("orders", "arn:s", "open", &seq("500"))
            .expect("start at");
        let record = store.snapshot("orders").expect("read").expect("stored");
        assert_eq!(record.phase, SnapshotPhase::Running);
        assert_eq!(record.segments.len(), 2);
        assert_eq!(record.segments[1], progress);
        let loaded = store.load("arn:s").expect("load");
        assert!(loaded["old"].finished);
        assert_eq!(loaded["open"].start_at, Some(seq("500")));
        assert_eq!(loaded["open"].sequence, None);
        store.finish_snapshot("orders").expect("finish");
        assert_eq!(
            store.snapshot("orders").expect("read").map(|r| r.phase),
            Some(SnapshotPhase::Done)
        );
    }

    #[test]
    fn reset_keeps_the_highest_sequence() {
        let (_dir, mut store) = store();
        let update = |shard: &str, sequence: &str| CheckpointUpdate {
            key: ShardKey {
                stream: Arc::from("arn:s"),
                shard: Arc::from(shard),
            },
            table: Arc::from("orders"),
            sequence: Some(seq(sequence)),
            finished: false,
        };
        store
            .save(&[update("a", "900"), update("b", "1000")])
            .expect("save");
        assert_eq!(
            store.highest_sequence("orders").expect("highest"),
            Some(seq("1000"))
        );
        store
            .request_snapshot("orders", "trimmed")
            .expect("request");
        assert_eq!(store.reset(Some("orders")).expect("reset"), 2);
        assert_eq!(store.snapshot("orders").expect("read"), None);
        assert_eq!(
            store.highest_sequence("orders").expect("highest"),
            Some(seq("1000"))
        );
    }
}
