//! Parquet dimension files, read a record batch at a time with only the
//! key and kept columns decoded.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::codec::Cell;
use super::read::{EncodedRow, Place, RowSpec};
use super::DimensionError;

/// Reads every row of a Parquet file into `on_row`.
pub(super) fn read(
    file: std::fs::File,
    name: &str,
    spec: &RowSpec,
    on_row: &mut dyn FnMut(&EncodedRow) -> Result<(), DimensionError>,
) -> Result<(), DimensionError> {
    let not_parquet = |e: parquet::errors::ParquetError| DimensionError::File {
        path: name.to_owned(),
        problem: format!("not a readable Parquet file: {e}"),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(not_parquet)?;
    let schema = Arc::clone(builder.schema());
    let index_of = |column: &str| {
        schema
            .index_of(column)
            .map_err(|_| DimensionError::MissingColumn {
                path: name.to_owned(),
                column: column.to_owned(),
                available: schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    };
    let wanted: Vec<usize> = spec
        .key
        .iter()
        .chain(&spec.columns)
        .map(|c| index_of(c))
        .collect::<Result<_, _>>()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), wanted.iter().copied());
    let reader = builder
        .with_projection(mask)
        .with_batch_size(8192)
        .build()
        .map_err(not_parquet)?;
    let mut row = EncodedRow::new(spec.key.len());
    let mut first_row = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| DimensionError::File {
            path: name.to_owned(),
            problem: format!("after row {first_row}: {e}"),
        })?;
        read_batch(&batch, name, spec, first_row, &mut row, on_row)?;
        first_row += batch.num_rows() as u64;
    }
    Ok(())
}

fn read_batch(
    batch: &RecordBatch,
    name: &str,
    spec: &RowSpec,
    first_row: u64,
    row: &mut EncodedRow,
    on_row: &mut dyn FnMut(&EncodedRow) -> Result<(), DimensionError>,
) -> Result<(), DimensionError> {
    // The projection keeps the file's column order: find ours by name.
    let column = |name: &str| batch.column_by_name(name).map(Arc::clone);
    let keys: Vec<_> = spec.key.iter().filter_map(|c| column(c)).collect();
    let kept: Vec<_> = spec.columns.iter().filter_map(|c| column(c)).collect();
    let mut scratch = String::new();
    for index in 0..batch.num_rows() {
        let place = Place::Row(first_row + index as u64 + 1);
        row.start(place);
        let bad = |problem: String| DimensionError::Row {
            path: name.to_owned(),
            place: place.to_string(),
            problem,
        };
        for array in &keys {
            match arrow_cell(array.as_ref(), index, &mut scratch).map_err(bad)? {
                Cell::S(text) | Cell::N(text) => row.push_key(Some(text)),
                Cell::Null | Cell::Bool(_) => row.push_key(None),
            }
        }
        for array in &kept {
            let cell = arrow_cell(array.as_ref(), index, &mut scratch).map_err(bad)?;
            row.push_cell(cell);
        }
        on_row(row)?;
    }
    Ok(())
}

/// One Arrow cell; numbers are written into `scratch` as exact decimal text.
fn arrow_cell<'a>(
    array: &'a dyn Array,
    row: usize,
    scratch: &'a mut String,
) -> Result<Cell<'a>, String> {
    if array.is_null(row) {
        return Ok(Cell::Null);
    }
    scratch.clear();
    // Writing into a String cannot fail.
    let number = |scratch: &'a mut String, value: &dyn std::fmt::Display| {
        let _ = write!(scratch, "{value}");
        Cell::N(scratch.as_str())
    };
    Ok(match array.data_type() {
        DataType::Utf8 => Cell::S(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Cell::S(array.as_string::<i64>().value(row)),
        DataType::Utf8View => Cell::S(array.as_string_view().value(row)),
        DataType::Boolean => Cell::Bool(array.as_boolean().value(row)),
        DataType::Int8 => number(scratch, &array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => number(scratch, &array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => number(scratch, &array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => number(scratch, &array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => number(scratch, &array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => number(scratch, &array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => number(scratch, &array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => number(scratch, &array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 => float_cell(
            f64::from(array.as_primitive::<Float32Type>().value(row)),
            scratch,
        ),
        DataType::Float64 => float_cell(array.as_primitive::<Float64Type>().value(row), scratch),
        DataType::Decimal128(_, scale) => {
            let raw = array.as_primitive::<Decimal128Type>().value(row);
            decimal_text(raw, *scale, scratch);
            Cell::N(scratch.as_str())
        }
        other => {
            return Err(format!(
            "column type {other} is not supported (strings, integers, floats, decimals, booleans)"
        ))
        }
    })
}

/// A float as its shortest exact text (`1.5`, `1e100`); NaN and infinities are NULL.
fn float_cell(value: f64, scratch: &mut String) -> Cell<'_> {
    if !value.is_finite() {
        return Cell::Null;
    }
    let _ = write!(scratch, "{value:?}");
    Cell::N(scratch.as_str())
}

/// A Decimal128's exact text.
fn decimal_text(raw: i128, scale: i8, out: &mut String) {
    if scale <= 0 {
        let _ = write!(
            out,
            "{raw}{}",
            "0".repeat(usize::from(scale.unsigned_abs()))
        );
        return;
    }
    let scale = usize::from(scale.unsigned_abs());
    let digits = raw.unsigned_abs().to_string();
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    let _ = write!(out, "{}{int}.{frac}", if raw < 0 { "-" } else { "" });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_digits() {
        let text = |raw, scale| {
            let mut out = String::new();
            decimal_text(raw, scale, &mut out);
            out
        };
        assert_eq!(text(12345, 2), "123.45");
        assert_eq!(text(-5, 3), "-0.005");
        assert_eq!(text(7, -2), "700");
    }

    #[test]
    fn floats_are_exact_and_non_finite_is_null() {
        let mut scratch = String::new();
        assert_eq!(float_cell(1.5, &mut scratch), Cell::N("1.5"));
        let mut scratch = String::new();
        assert_eq!(float_cell(f64::NAN, &mut scratch), Cell::Null);
    }
}
