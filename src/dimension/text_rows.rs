//! CSV (through the `csv` crate: RFC 4180 quoting, newlines inside quoted
//! fields, a leading UTF-8 BOM removed) and JSON Lines dimension files,
//! read a record at a time.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};

use serde_json::value::RawValue;

use super::codec::Cell;
use super::read::{EncodedRow, Place, RowSpec};
use super::DimensionError;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A buffered reader past the file's UTF-8 byte-order mark, and the
/// bytes skipped (3 with a mark, else 0).
fn without_bom(
    file: std::fs::File,
    name: &str,
) -> Result<(BufReader<std::fs::File>, u64), DimensionError> {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let starts_with_bom = reader
        .fill_buf()
        .map_err(|e| DimensionError::io(name, e))?
        .starts_with(BOM);
    if !starts_with_bom {
        return Ok((reader, 0));
    }
    reader.consume(BOM.len());
    Ok((reader, BOM.len() as u64))
}

/// Reads every record of a CSV file with a header row into `on_row`.
pub(super) fn read_csv(
    file: std::fs::File,
    name: &str,
    spec: &RowSpec,
    on_row: &mut dyn FnMut(&EncodedRow) -> Result<(), DimensionError>,
) -> Result<(), DimensionError> {
    let (file, skipped) = without_bom(file, name)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(file);
    let csv_error = |err: csv::Error| {
        let place = err.position().map(|p| Place::Line(p.line()));
        let problem = match err.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => {
                format!("{len} fields where the header has {expected_len} (a truncated file or an unbalanced quote?)")
            }
            _ => err.to_string(),
        };
        match place {
            Some(place) => DimensionError::Row {
                path: name.to_owned(),
                place: place.to_string(),
                problem,
            },
            None => DimensionError::File {
                path: name.to_owned(),
                problem,
            },
        }
    };
    let header = reader.headers().map_err(csv_error)?.clone();
    if header.is_empty() {
        return Err(DimensionError::File {
            path: name.to_owned(),
            problem: "the CSV file is empty (no header row)".into(),
        });
    }
    let index_of = |column: &str| {
        header
            .iter()
            .position(|h| h.trim() == column)
            .ok_or_else(|| DimensionError::MissingColumn {
                path: name.to_owned(),
                column: column.to_owned(),
                available: header.iter().collect::<Vec<_>>().join(", "),
            })
    };
    let keys: Vec<usize> = spec
        .key
        .iter()
        .map(|c| index_of(c))
        .collect::<Result<_, _>>()?;
    let kept: Vec<usize> = spec
        .columns
        .iter()
        .map(|c| index_of(c))
        .collect::<Result<_, _>>()?;
    let mut record = csv::StringRecord::new();
    let mut row = EncodedRow::new(spec.key.len());
    let mut last_start = None;
    while reader.read_record(&mut record).map_err(csv_error)? {
        last_start = record.position().map(|p| (skipped + p.byte(), p.line()));
        let line = record.position().map_or(0, csv::Position::line);
        row.start(Place::Line(line));
        for &index in &keys {
            row.push_key(record.get(index));
        }
        for &index in &kept {
            row.push_cell(record.get(index).map_or(Cell::Null, Cell::S));
        }
        on_row(&row)?;
    }
    match last_start {
        Some((byte, line)) => check_quotes_closed(reader.into_inner(), byte, line, name),
        None => Ok(()),
    }
}

/// Refuses a file whose last record opens a quote it never closes (a
/// truncated file: the `csv` crate takes the rest of the file as the value).
fn check_quotes_closed(
    mut reader: BufReader<std::fs::File>,
    start: u64,
    line: u64,
    name: &str,
) -> Result<(), DimensionError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut tail = Vec::new();
    let file = reader.get_mut();
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_to_end(&mut tail))
        .map_err(|e| DimensionError::io(name, e))?;
    if tail.iter().filter(|&&b| b == b'"').count() % 2 == 1 {
        return Err(DimensionError::Row {
            path: name.to_owned(),
            place: Place::Line(line).to_string(),
            problem: "a quoted value is never closed (a truncated file?)".into(),
        });
    }
    Ok(())
}

/// Reads every line of a JSON Lines file (blank lines skipped) into `on_row`.
pub(super) fn read_json_lines(
    file: std::fs::File,
    name: &str,
    spec: &RowSpec,
    on_row: &mut dyn FnMut(&EncodedRow) -> Result<(), DimensionError>,
) -> Result<(), DimensionError> {
    let (mut reader, _) = without_bom(file, name)?;
    let mut line = String::new();
    let mut row = EncodedRow::new(spec.key.len());
    let mut number = 0u64;
    let mut text = String::new();
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| DimensionError::io(name, e))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let place = Place::Line(number);
        let bad = |problem: String| DimensionError::Row {
            path: name.to_owned(),
            place: place.to_string(),
            problem,
        };
        let object: HashMap<Cow<'_, str>, &RawValue> =
            serde_json::from_str(&line).map_err(|e| bad(format!("not a JSON object: {e}")))?;
        row.start(place);
        for column in &spec.key {
            let cell = match object.get(column.as_str()) {
                Some(raw) => json_cell(raw, &mut text).map_err(|e| bad(e.to_string()))?,
                None => Cell::Null,
            };
            match cell {
                Cell::S(part) | Cell::N(part) => row.push_key(Some(part)),
                Cell::Null | Cell::Bool(_) => row.push_key(None),
            }
        }
        for column in &spec.columns {
            let cell = match object.get(column.as_str()) {
                Some(raw) => json_cell(raw, &mut text).map_err(|e| bad(e.to_string()))?,
                None => Cell::Null,
            };
            row.push_cell(cell);
        }
        on_row(&row)?;
    }
}

/// One JSON value as a cell: numbers keep their exact text, strings are
/// unescaped into `text`, objects and arrays become their JSON text.
fn json_cell<'a>(raw: &'a RawValue, text: &'a mut String) -> Result<Cell<'a>, CellError> {
    let json = raw.get();
    Ok(match json.as_bytes().first() {
        Some(b'n') => Cell::Null,
        Some(b't') => Cell::Bool(true),
        Some(b'f') => Cell::Bool(false),
        Some(b'"') => {
            *text = serde_json::from_str::<String>(json)?;
            Cell::S(text.as_str())
        }
        Some(b'{' | b'[') => Cell::S(json),
        _ => {
            crate::model::Number::parse(json)?;
            Cell::N(json)
        }
    })
}

/// Why a JSON value is not a cell.
#[derive(Debug, thiserror::Error)]
enum CellError {
    /// A string that does not unescape.
    #[error("bad string: {0}")]
    String(#[from] serde_json::Error),
    /// A number DynamoDB would not accept.
    #[error(transparent)]
    Number(#[from] crate::model::NumberError),
}
