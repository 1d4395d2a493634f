//! The dead-letter destination: records that could not be decoded or that a
//! sink rejected for good, each with its error, as JSON Lines per table.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use serde::Serialize;

/// A dead-letter write failure, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("dead-letter file {path}: {source}")]
pub struct DeadLetterError {
    /// The file.
    pub path: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

/// One dead letter.
#[derive(Debug, Serialize)]
pub struct DeadLetter<'a> {
    /// Source table.
    pub table: &'a str,
    /// Where it failed: `decode` or `sink:<name>`.
    pub stage: &'a str,
    /// Shard the record came from.
    pub shard: &'a str,
    /// Its sequence number, when known.
    pub sequence: Option<&'a str>,
    /// Why it failed.
    pub error: &'a str,
    /// The record: raw stream JSON for decode failures, the change event for sink rejections.
    pub record: &'a serde_json::value::RawValue,
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    #[serde(flatten)]
    letter: &'a DeadLetter<'a>,
}

/// Appends dead letters to `<dir>/<table>.jsonl`, flushed to disk before
/// `write` returns, so that a checkpoint can safely move past them.
pub struct DeadLetters {
    dir: PathBuf,
    files: Mutex<HashMap<String, File>>,
}

impl DeadLetters {
    /// Dead letters under `dir` (created on the first letter).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            files: Mutex::new(HashMap::new()),
        }
    }

    /// The file that holds `table`'s dead letters.
    pub fn path_for(&self, table: &str) -> PathBuf {
        self.dir.join(format!("{table}.jsonl"))
    }

    /// Appends letters (all of one table) and syncs the file.
    pub fn write(&self, letters: &[DeadLetter<'_>]) -> Result<(), DeadLetterError> {
        let Some(first) = letters.first() else {
            return Ok(());
        };
        let path = self.path_for(first.table);
        let io = |source| DeadLetterError {
            path: path.clone(),
            source,
        };
        let mut buffer = Vec::new();
        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        for letter in letters {
            serde_json::to_writer(
                &mut buffer,
                &Line {
                    time: time.clone(),
                    letter,
                },
            )
            .map_err(|e| io(e.into()))?;
            buffer.push(b'\n');
        }
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        if !files.contains_key(first.table) {
            std::fs::create_dir_all(&self.dir).map_err(io)?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io)?;
            files.insert(first.table.to_owned(), file);
        }
        if let Some(file) = files.get_mut(first.table) {
            file.write_all(&buffer).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        for letter in letters {
            let labels = [
                ("table", letter.table.to_owned()),
                ("stage", letter.stage.to_owned()),
            ];
            metrics::counter!(crate::metric_names::DEAD_LETTERS, &labels).increment(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_letters_with_their_error() {
        let dir = tempfile::tempdir().unwrap();
        let letters = DeadLetters::new(&dir.path().join("dead"));
        let record = serde_json::value::RawValue::from_string("{\"x\":1}".into()).unwrap();
        let letter = DeadLetter {
            table: "orders",
            stage: "decode",
            shard: "shard-1",
            sequence: Some("42"),
            error: "bad number",
            record: &record,
        };
        letters.write(&[letter]).unwrap();
        let text = std::fs::read_to_string(letters.path_for("orders")).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["error"], "bad number");
        assert_eq!(line["record"]["x"], 1);
        assert_eq!(line["sequence"], "42");
        assert!(line["time"].as_str().unwrap().ends_with('Z'));
    }
}
