//! Reads a dimension file row by row without holding it in memory: each
//! row's key and selected columns are encoded ([`super::codec`]) and handed
//! to a callback, with the line (CSV, JSON Lines) or row (Parquet) it came
//! from for error messages.

use std::fmt;
use std::path::Path;

use super::codec::{Cell, KeyBuilder};
use super::text_rows;
use super::DimensionError;

/// The file formats a dimension table can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DimensionFormat {
    /// Apache Parquet; column types map to S, N, BOOL and NULL.
    Parquet,
    /// CSV with a header row (RFC 4180 quoting, newlines inside quotes, an
    /// optional UTF-8 BOM); every value is a string.
    Csv,
    /// One JSON object per line; strings, numbers (exact), booleans and
    /// nulls map to S, N, BOOL, NULL; nested values to their JSON text.
    JsonLines,
}

impl DimensionFormat {
    /// The format a file name implies (`.parquet`, `.csv`, `.jsonl`/`.ndjson`/`.json`).
    pub fn from_path(path: &str) -> Option<Self> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".parquet") {
            Some(Self::Parquet)
        } else if lower.ends_with(".csv") {
            Some(Self::Csv)
        } else if lower.ends_with(".jsonl")
            || lower.ends_with(".ndjson")
            || lower.ends_with(".json")
        {
            Some(Self::JsonLines)
        } else {
            None
        }
    }
}

/// Which columns of the file make the key and which are kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowSpec {
    /// Key columns, in the order joins name their attributes.
    pub key: Vec<String>,
    /// Columns kept for joins, in this order.
    pub columns: Vec<String>,
}

/// Where a row is in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A line of a text file (1-based; a CSV record's first line).
    Line(u64),
    /// A row of a Parquet file (1-based).
    Row(u64),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(n) => write!(f, "line {n}"),
            Self::Row(n) => write!(f, "row {n}"),
        }
    }
}

/// One row as read: its key and its kept cells, encoded.
#[derive(Debug, Clone)]
pub struct EncodedRow {
    /// Where it is in the file.
    pub place: Place,
    /// The key.
    pub key: KeyBuilder,
    /// The kept columns' cells, in [`RowSpec::columns`] order.
    pub cells: Vec<u8>,
    keyless: bool,
}

impl EncodedRow {
    /// An empty row for keys of `key_parts` parts.
    pub fn new(key_parts: usize) -> Self {
        Self {
            place: Place::Line(0),
            key: KeyBuilder::new(key_parts),
            cells: Vec::new(),
            keyless: false,
        }
    }

    /// Starts the row at `place`.
    pub fn start(&mut self, place: Place) {
        self.place = place;
        self.key.clear();
        self.cells.clear();
        self.keyless = false;
    }

    /// Adds the next key part; a NULL or missing part leaves the row without a key.
    pub fn push_key(&mut self, part: Option<&str>) {
        match part {
            Some(text) => self.key.push(text),
            None => self.keyless = true,
        }
    }

    /// Adds the next kept cell.
    pub fn push_cell(&mut self, cell: Cell<'_>) {
        cell.encode(&mut self.cells);
    }
}

/// What reading a file found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadCounts {
    /// Rows with a key, handed to the callback.
    pub rows: u64,
    /// Rows skipped because a key part was NULL or missing (they could
    /// never join).
    pub keyless: u64,
}

/// Reads `file` (named `name` in errors) and calls `on_row` for every row
/// with a whole key. Fails on the first row or callback that fails.
pub fn read_rows(
    file: &Path,
    name: &str,
    format: DimensionFormat,
    spec: &RowSpec,
    on_row: &mut dyn FnMut(&EncodedRow) -> Result<(), DimensionError>,
) -> Result<ReadCounts, DimensionError> {
    let opened = std::fs::File::open(file).map_err(|e| DimensionError::io(name, e))?;
    let mut counts = ReadCounts::default();
    let mut counted = |row: &EncodedRow| {
        if row.keyless {
            counts.keyless += 1;
            return Ok(());
        }
        counts.rows += 1;
        on_row(row)
    };
    match format {
        DimensionFormat::Parquet => super::parquet_rows::read(opened, name, spec, &mut counted)?,
        DimensionFormat::Csv => text_rows::read_csv(opened, name, spec, &mut counted)?,
        DimensionFormat::JsonLines => text_rows::read_json_lines(opened, name, spec, &mut counted)?,
    }
    if counts.rows == 0 && counts.keyless > 0 {
        return Err(DimensionError::File {
            path: name.to_owned(),
            problem: format!("no row has a value for the key {:?}", spec.key.join(", ")),
        });
    }
    Ok(counts)
}
