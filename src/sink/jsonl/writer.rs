//! Appends batches of change events to per-table JSON Lines files.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use flate2::write::GzEncoder;

use super::files::{file_name, repair_tail};
use super::JsonlSinkConfig;
use crate::sink::{write_blocking, Batch, Rejected, SinkError, SinkWriter};

struct OpenFile {
    file: File,
    path: PathBuf,
    written: u64,
}

struct State {
    name: String,
    dir: PathBuf,
    gzip: bool,
    rotate_bytes: Option<u64>,
    open: HashMap<Arc<str>, OpenFile>,
    counters: HashMap<Arc<str>, u32>,
    /// Line buffers of earlier batches, kept for reuse: a batch's lines are
    /// megabytes, and fresh memory for each batch costs page faults.
    spare: Vec<Vec<u8>>,
}

/// The `jsonl` sink. Writes run on the blocking thread pool.
pub struct JsonlSink {
    name: String,
    state: Arc<Mutex<State>>,
}

impl JsonlSink {
    /// A sink writing under `config.dir`; files are created on first write.
    pub fn new(name: &str, config: &JsonlSinkConfig) -> Self {
        Self {
            name: name.to_owned(),
            state: Arc::new(Mutex::new(State {
                name: name.to_owned(),
                dir: config.dir.clone(),
                gzip: config.gzip,
                rotate_bytes: config.rotate_bytes,
                open: HashMap::new(),
                counters: HashMap::new(),
                spare: Vec::new(),
            })),
        }
    }
}

impl SinkWriter for JsonlSink {
    async fn write(&mut self, batch: Batch) -> Result<Vec<Rejected>, SinkError> {
        write_blocking(&self.name, &self.state, batch, State::write).await
    }
}

impl State {
    fn io_error(&self, path: &Path, err: std::io::Error) -> SinkError {
        SinkError::Transient {
            sink: self.name.clone(),
            message: format!("{}: {err}", path.display()),
        }
    }

    fn write(&mut self, batch: &Batch) -> Result<Vec<Rejected>, SinkError> {
        let mut by_table: Vec<(Arc<str>, Vec<u8>)> = Vec::new();
        // Chunks without events (a snapshot's end) add nothing to a log.
        for chunk in batch.chunks.iter().filter(|c| !c.events.is_empty()) {
            let buffer = match by_table.iter_mut().find(|(t, _)| *t == chunk.table) {
                Some((_, buffer)) => buffer,
                None => {
                    let buffer = self.spare.pop().unwrap_or_default();
                    by_table.push((Arc::clone(&chunk.table), buffer));
                    match by_table.last_mut() {
                        Some((_, buffer)) => buffer,
                        None => continue,
                    }
                }
            };
            for event in &chunk.events {
                event.write_json_line(buffer);
            }
        }
        for (table, mut lines) in by_table {
            if self.gzip {
                let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
                let bytes = encoder
                    .write_all(&lines)
                    .and_then(|()| encoder.finish())
                    .map_err(|e| self.io_error(&self.dir, e))?;
                self.append(&table, &bytes)?;
            } else {
                self.append(&table, &lines)?;
            }
            lines.clear();
            self.spare.push(lines);
        }
        Ok(Vec::new())
    }

    fn append(&mut self, table: &Arc<str>, bytes: &[u8]) -> Result<(), SinkError> {
        if !self.open.contains_key(table) {
            let file = self.open_new(table)?;
            self.open.insert(Arc::clone(table), file);
        }
        let Some(open) = self.open.get_mut(table) else {
            return Ok(());
        };
        let result = open
            .file
            .write_all(bytes)
            .and_then(|()| open.file.sync_data());
        if let Err(err) = result {
            let path = open.path.clone();
            // The file may now end in a partial batch: drop it and continue in a new
            // file after cutting the tail, so the retry does not follow garbage.
            self.open.remove(table);
            let _ = repair_tail(&path);
            return Err(self.io_error(&path, err));
        }
        open.written += bytes.len() as u64;
        if self.rotate_bytes.is_some_and(|limit| open.written >= limit) {
            tracing::debug!(sink = %self.name, file = %open.path.display(), "rotating");
            self.open.remove(table);
        }
        Ok(())
    }

    fn open_new(&mut self, table: &Arc<str>) -> Result<OpenFile, SinkError> {
        let dir = self.dir.join(&**table);
        std::fs::create_dir_all(&dir).map_err(|e| self.io_error(&dir, e))?;
        let counter = self.counters.entry(Arc::clone(table)).or_insert(0);
        if *counter == 0 {
            repair_newest(&dir, table, &self.name);
        }
        *counter += 1;
        let path = dir.join(file_name(table, SystemTime::now(), *counter, self.gzip));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| self.io_error(&path, e))?;
        Ok(OpenFile {
            file,
            path,
            written: 0,
        })
    }
}

/// Cuts the torn tail of the newest file a previous run left in `dir`.
fn repair_newest(dir: &Path, table: &str, sink: &str) {
    let prefix = format!("{table}-");
    let newest = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&prefix) && (n.ends_with(".jsonl") || n.ends_with(".jsonl.gz"))
            })
        })
        .max();
    if let Some(path) = newest {
        match repair_tail(&path) {
            Ok(0) => {}
            Ok(removed) => tracing::warn!(
                sink,
                file = %path.display(),
                removed,
                "cut an unacknowledged partial batch off the end of the file (it is read again from the stream)"
            ),
            Err(err) => {
                tracing::warn!(sink, file = %path.display(), "could not check the file's tail: {err}")
            }
        }
    }
}
