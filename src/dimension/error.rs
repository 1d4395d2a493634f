//! Why a dimension table could not be read, indexed or opened: every
//! error names the file, and where it can, the line or row.

use std::path::PathBuf;

/// A failure to read a dimension file or to build, open or read its index.
#[derive(Debug, thiserror::Error)]
pub enum DimensionError {
    /// The file (or object) could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file's name does not say which format it has.
    #[error("{path}: unknown file type (expected .parquet, .csv, .jsonl, .ndjson or .json)")]
    UnknownFormat {
        /// The file.
        path: String,
    },
    /// A key column or a selected column is not in the file.
    #[error("{path}: the dimension table has no column {column:?} (it has: {available})")]
    MissingColumn {
        /// The file.
        path: String,
        /// The column named in the configuration.
        column: String,
        /// The columns the file has, comma-separated.
        available: String,
    },
    /// One line (CSV, JSON Lines) or row (Parquet) cannot be read.
    #[error("{path} {place}: {problem}")]
    Row {
        /// The file.
        path: String,
        /// `line N` or `row N`.
        place: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The file is not readable as a whole (not Parquet, truncated, not UTF-8).
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Two rows have the same key: the table is refused, since a join
    /// could not say which row is meant.
    #[error(
        "{path} {place}: duplicate key {key:?} (an earlier row has it too; keys must be unique)"
    )]
    DuplicateKey {
        /// The file.
        path: String,
        /// `line N` or `row N` of the second row.
        place: String,
        /// The key, parts joined with `/`.
        key: String,
    },
    /// The on-disk index store failed.
    #[error("dimension index {dir}: {problem}")]
    Store {
        /// The index directory.
        dir: PathBuf,
        /// What the store said.
        problem: String,
    },
}

impl DimensionError {
    /// An I/O error on `path`.
    pub fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_string(),
            source,
        }
    }

    /// A store error in `dir`.
    pub fn store(dir: &std::path::Path, problem: impl std::fmt::Display) -> Self {
        Self::Store {
            dir: dir.to_path_buf(),
            problem: problem.to_string(),
        }
    }
}
