//! Embedded checkpoint store: one SQLite file under the state directory,
//! written in transactions so a crash leaves either the old or the new checkpoints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::tracker::CheckpointUpdate;
use crate::clock::now_ms;
use crate::model::SequenceNumber;

/// A checkpoint store failure, naming the database file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("checkpoint store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A stored sequence number is not a number (the file was edited or corrupted).
    #[error("checkpoint store {path}: shard {shard}: {message}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The shard whose row is bad.
        shard: String,
        /// What is wrong.
        message: String,
    },
}

/// What is known of one shard from earlier runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardCheckpoint {
    /// Last acknowledged sequence number; reading resumes after it.
    pub sequence: Option<SequenceNumber>,
    /// The shard was read to its end and everything acknowledged.
    pub finished: bool,
    /// Without a sequence: start at this record (inclusive), the first
    /// record a snapshot saw arrive after it started.
    pub start_at: Option<SequenceNumber>,
}

/// One stored checkpoint, for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    /// Source table.
    pub table: String,
    /// Stream ARN.
    pub stream_arn: String,
    /// Shard id.
    pub shard: String,
    /// The checkpoint.
    pub checkpoint: ShardCheckpoint,
    /// When it was last written, milliseconds since the Unix epoch.
    pub updated_at_ms: i64,
}

/// Checkpoints keyed by stream ARN and shard id.
pub struct CheckpointStore {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS checkpoints (
    stream_arn    TEXT NOT NULL,
    shard_id      TEXT NOT NULL,
    table_name    TEXT NOT NULL,
    sequence      TEXT,
    finished      INTEGER NOT NULL DEFAULT 0,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (stream_arn, shard_id)
);
CREATE INDEX IF NOT EXISTS checkpoints_by_table ON checkpoints (table_name);
";

/// Columns added after the first release, added to older files on open.
const MIGRATIONS: [(&str, &str); 1] = [(
    "start_at",
    "ALTER TABLE checkpoints ADD COLUMN start_at TEXT",
)];

impl CheckpointStore {
    /// The store's file inside a state directory.
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join("checkpoints.db")
    }

    /// Opens (creating when missing) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        conn.execute_batch(super::snapshot_store::SCHEMA)
            .map_err(err)?;
        for (column, ddl) in MIGRATIONS {
            let present: bool = conn
                .query_row(
                    "SELECT count(*) > 0 FROM pragma_table_info('checkpoints') WHERE name = ?1",
                    [column],
                    |row| row.get(0),
                )
                .map_err(err)?;
            if !present {
                conn.execute_batch(ddl).map_err(err)?;
            }
        }
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn parse_sequence(
        &self,
        shard: &str,
        text: Option<String>,
    ) -> Result<Option<SequenceNumber>, StoreError> {
        parse_stored(&self.path, shard, text)
    }

    /// Every shard checkpoint of one stream.
    pub fn load(&self, stream_arn: &str) -> Result<HashMap<String, ShardCheckpoint>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT shard_id, sequence, finished, start_at FROM checkpoints WHERE stream_arn = ?1",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([stream_arn], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, bool>(2)?,
                    row.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut out = HashMap::new();
        for row in rows {
            let (shard, sequence, finished, start_at) = row.map_err(|e| self.sqlite(e))?;
            let sequence = self.parse_sequence(&shard, sequence)?;
            let start_at = self.parse_sequence(&shard, start_at)?;
            out.insert(
                shard,
                ShardCheckpoint {
                    sequence,
                    finished,
                    start_at,
                },
            );
        }
        Ok(out)
    }

    /// Stream ARNs that hold checkpoints of `table`, newest write first.
    pub fn streams_of(&self, table: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT stream_arn FROM checkpoints WHERE table_name = ?1
                 GROUP BY stream_arn ORDER BY MAX(updated_at_ms) DESC",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([table], |row| row.get::<_, String>(0))
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))
    }

    /// Writes checkpoint updates in one transaction. A checkpoint never moves
    /// backwards: an update older than the stored sequence is ignored.
    pub fn save(&mut self, updates: &[CheckpointUpdate]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let tx = self.conn.transaction().map_err(|e| StoreError::Sqlite {
            path: self.path.clone(),
            source: e,
        })?;
        {
            let mut select = tx
                .prepare_cached(
                    "SELECT sequence FROM checkpoints WHERE stream_arn = ?1 AND shard_id = ?2",
                )
                .map_err(|e| sqlite_at(&self.path, e))?;
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO checkpoints (stream_arn, shard_id, table_name, sequence, finished, updated_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (stream_arn, shard_id) DO UPDATE SET
                        table_name = excluded.table_name,
                        sequence = excluded.sequence,
                        finished = MAX(checkpoints.finished, excluded.finished),
                        updated_at_ms = excluded.updated_at_ms",
                )
                .map_err(|e| sqlite_at(&self.path, e))?;
            for update in updates {
                let stored: Option<String> = select
                    .query_row(params![update.key.stream, update.key.shard], |row| {
                        row.get(0)
                    })
                    .optional()
                    .map_err(|e| sqlite_at(&self.path, e))?
                    .flatten();
                let stored = parse_stored(&self.path, &update.key.shard, stored)?;
                let sequence = match (&stored, &update.sequence) {
                    (Some(old), Some(new)) if new < old => Some(old),
                    (old, None) => old.as_ref(),
                    (_, new) => new.as_ref(),
                };
                upsert
                    .execute(params![
                        update.key.stream,
                        update.key.shard,
                        update.table,
                        sequence.map(SequenceNumber::as_str),
                        update.finished,
                        now
                    ])
                    .map_err(|e| sqlite_at(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| sqlite_at(&self.path, e))
    }

    /// Every stored checkpoint, by table, stream and shard.
    pub fn all(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT table_name, stream_arn, shard_id, sequence, finished, updated_at_ms, start_at
                 FROM checkpoints ORDER BY table_name, stream_arn, shard_id",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, bool>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, Option<String>>(6)?,
                ))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (table, stream_arn, shard, sequence, finished, updated_at_ms, start_at) =
                row.map_err(|e| self.sqlite(e))?;
            let sequence = self.parse_sequence(&shard, sequence)?;
            let start_at = self.parse_sequence(&shard, start_at)?;
            out.push(CheckpointRow {
                table,
                stream_arn,
                shard,
                checkpoint: ShardCheckpoint {
                    sequence,
                    finished,
                    start_at,
                },
                updated_at_ms,
            });
        }
        Ok(out)
    }

    /// Deletes the checkpoints and snapshot state of `table` (or of every
    /// table); returns how many checkpoints went. The highest sequence number
    /// each table reached is kept, so a later snapshot versions its rows at
    /// or above everything the sinks already hold.
    pub fn reset(&mut self, table: Option<&str>) -> Result<usize, StoreError> {
        let tables: Vec<String> = match table {
            Some(table) => vec![table.to_owned()],
            None => {
                let mut stmt = self
                    .conn
                    .prepare(
                        "SELECT table_name FROM checkpoints UNION SELECT table_name FROM snapshots",
                    )
                    .map_err(|e| self.sqlite(e))?;
                let rows = stmt
                    .query_map([], |row| row.get::<_, String>(0))
                    .map_err(|e| self.sqlite(e))?;
                rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))?
            }
        };
        let mut deleted = 0;
        for table in tables {
            deleted += self.clear_table(&table)?;
        }
        Ok(deleted)
    }
}

fn parse_stored(
    path: &Path,
    shard: &str,
    text: Option<String>,
) -> Result<Option<SequenceNumber>, StoreError> {
    text.map(|text| {
        SequenceNumber::parse(&text).map_err(|err| StoreError::Corrupt {
            path: path.to_owned(),
            shard: shard.to_owned(),
            message: err.to_string(),
        })
    })
    .transpose()
}

fn sqlite_at(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::ShardKey;
    use std::sync::Arc;

    fn update(shard: &str, seq: Option<&str>, finished: bool) -> CheckpointUpdate {
        CheckpointUpdate {
            key: ShardKey {
                stream: Arc::from("arn:s1"),
                shard: Arc::from(shard),
            },
            table: Arc::from("orders"),
            sequence: seq.map(|s| SequenceNumber::parse(s).unwrap()),
            finished,
        }
    }

    #[test]
    fn saves_loads_and_never_moves_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = CheckpointStore::path_in(dir.path());
        let mut store = CheckpointStore::open(&path).unwrap();
        store
            .save(&[update("a", Some("200"), false), update("b", None, true)])
            .unwrap();
        store.save(&[update("a", Some("100"), false)]).unwrap();
        drop(store);
        let mut store = CheckpointStore::open(&path).unwrap();
        let loaded = store.load("arn:s1").unwrap();
        assert_eq!(loaded["a"].sequence.as_ref().unwrap().as_str(), "200");
        assert!(!loaded["a"].finished);
        assert!(loaded["b"].finished);
        assert_eq!(store.streams_of("orders").unwrap(), ["arn:s1"]);
        assert_eq!(store.all().unwrap().len(), 2);
        assert_eq!(store.reset(Some("other")).unwrap(), 0);
        assert_eq!(store.reset(Some("orders")).unwrap(), 2);
        assert!(store.load("arn:s1").unwrap().is_empty());
    }
}
