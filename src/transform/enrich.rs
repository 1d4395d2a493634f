//! The enrichment join: a dimension table (Parquet, CSV or JSON Lines) keyed
//! by one column, joined to each change on one attribute (a left join:
//! changes without a match pass through unchanged).

use std::collections::HashMap;

use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::model::{AttributeValue, ChangeEvent, Number, Op};

/// The file formats a dimension table can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DimensionFormat {
    /// Apache Parquet; column types map to S, N, BOOL and NULL.
    Parquet,
    /// CSV with a header row; every value is a string.
    Csv,
    /// One JSON object per line; strings, numbers, booleans and nulls map to S, N, BOOL, NULL.
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

/// A loaded dimension table: rows by the text of their key column, each
/// row the selected columns' values in `columns` order (names stored once).
#[derive(Debug, Clone, Default)]
pub struct Dimension {
    columns: Vec<String>,
    rows: HashMap<String, Row>,
}

/// One row's values, in the dimension's column order.
type Row = Box<[AttributeValue]>;

impl Dimension {
    /// Rows loaded.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no row was loaded.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds the matching row's columns, named `<prefix><column>`, to the
    /// change's new image (the old one for removes); returns whether a row matched.
    pub fn join(&self, event: &mut ChangeEvent, field: &str, prefix: &str) -> bool {
        let image = if event.op == Op::Remove {
            event.old_image.as_mut()
        } else {
            event.new_image.as_mut()
        };
        let Some(Ok(image)) = image.map(|image| image.item_mut()) else {
            return false;
        };
        let key = match image.get(field) {
            Some(AttributeValue::S(s)) => s.clone(),
            Some(AttributeValue::N(n)) => n.as_str().to_owned(),
            _ => return false,
        };
        let Some(row) = self.rows.get(&key) else {
            return false;
        };
        for (column, value) in self.columns.iter().zip(row.iter()) {
            image.insert(format!("{prefix}{column}"), value.clone());
        }
        true
    }

    /// The value of `column` in the row keyed `key`.
    pub fn value(&self, key: &str, column: &str) -> Option<&AttributeValue> {
        let index = self.columns.iter().position(|c| c == column)?;
        self.rows.get(key)?.get(index)
    }
}

/// Loads a dimension table, keeping `columns` of each row keyed by `key_column`.
pub fn load_dimension(
    bytes: bytes::Bytes,
    format: DimensionFormat,
    key_column: &str,
    columns: &[String],
) -> Result<Dimension, String> {
    let rows = match format {
        DimensionFormat::Parquet => load_parquet(bytes, key_column, columns)?,
        DimensionFormat::Csv => load_csv(&bytes, key_column, columns)?,
        DimensionFormat::JsonLines => load_json_lines(&bytes, key_column, columns)?,
    };
    Ok(Dimension {
        columns: columns.to_vec(),
        rows,
    })
}

fn key_text(value: &AttributeValue) -> Option<String> {
    match value {
        AttributeValue::S(s) => Some(s.clone()),
        AttributeValue::N(n) => Some(n.as_str().to_owned()),
        _ => None,
    }
}

fn load_parquet(
    bytes: bytes::Bytes,
    key_column: &str,
    columns: &[String],
) -> Result<HashMap<String, Row>, String> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| format!("not a Parquet file: {e}"))?
        .build()
        .map_err(|e| e.to_string())?;
    let mut rows = HashMap::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        add_batch(&batch, key_column, columns, &mut rows)?;
    }
    Ok(rows)
}

fn add_batch(
    batch: &RecordBatch,
    key_column: &str,
    columns: &[String],
    rows: &mut HashMap<String, Row>,
) -> Result<(), String> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("the dimension table has no column {name:?}"))
    };
    let key = column(key_column)?;
    let selected: Vec<(&String, &std::sync::Arc<dyn Array>)> = columns
        .iter()
        .map(|name| column(name).map(|array| (name, array)))
        .collect::<Result<_, _>>()?;
    for row in 0..batch.num_rows() {
        let Some(key) = key_text(&arrow_value(key.as_ref(), row)?) else {
            continue;
        };
        let values: Vec<AttributeValue> = selected
            .iter()
            .map(|(_, array)| arrow_value(array.as_ref(), row))
            .collect::<Result<_, _>>()?;
        rows.insert(key, values.into_boxed_slice());
    }
    Ok(())
}

/// One Arrow cell as an attribute value.
fn arrow_value(array: &dyn Array, row: usize) -> Result<AttributeValue, String> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    if array.is_null(row) {
        return Ok(AttributeValue::Null);
    }
    let number = |text: String| {
        Number::parse(&text)
            .map(AttributeValue::N)
            .map_err(|e| e.to_string())
    };
    match array.data_type() {
        DataType::Utf8 => Ok(AttributeValue::S(array.as_string::<i32>().value(row).to_owned())),
        DataType::LargeUtf8 => Ok(AttributeValue::S(array.as_string::<i64>().value(row).to_owned())),
        DataType::Boolean => Ok(AttributeValue::Bool(array.as_boolean().value(row))),
        DataType::Int8 => number(array.as_primitive::<Int8Type>().value(row).to_string()),
        DataType::Int16 => number(array.as_primitive::<Int16Type>().value(row).to_string()),
        DataType::Int32 => number(array.as_primitive::<Int32Type>().value(row).to_string()),
        DataType::Int64 => number(array.as_primitive::<Int64Type>().value(row).to_string()),
        DataType::UInt8 => number(array.as_primitive::<UInt8Type>().value(row).to_string()),
        DataType::UInt16 => number(array.as_primitive::<UInt16Type>().value(row).to_string()),
        DataType::UInt32 => number(array.as_primitive::<UInt32Type>().value(row).to_string()),
        DataType::UInt64 => number(array.as_primitive::<UInt64Type>().value(row).to_string()),
        DataType::Float32 | DataType::Float64 => {
            let value = if matches!(array.data_type(), DataType::Float32) {
                f64::from(array.as_primitive::<Float32Type>().value(row))
            } else {
                array.as_primitive::<Float64Type>().value(row)
            };
            if value.is_finite() {
                number(format!("{value:?}"))
            } else {
                Ok(AttributeValue::Null)
            }
        }
        DataType::Decimal128(_, scale) => {
            let raw = array.as_primitive::<Decimal128Type>().value(row);
            number(decimal_text(raw, *scale))
        }
        other => Err(format!("dimension column type {other} is not supported (strings, integers, floats, decimals, booleans)")),
    }
}

fn decimal_text(raw: i128, scale: i8) -> String {
    if scale <= 0 {
        return format!("{raw}{}", "0".repeat(usize::from(scale.unsigned_abs())));
    }
    let scale = usize::from(scale.unsigned_abs());
    let digits = raw.unsigned_abs().to_string();
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{}{int}.{frac}", if raw < 0 { "-" } else { "" })
}

/// Splits one CSV line (RFC 4180 quoting; no newlines inside fields).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

fn load_csv(
    bytes: &[u8],
    key_column: &str,
    columns: &[String],
) -> Result<HashMap<String, Row>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("CSV is not UTF-8: {e}"))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = csv_fields(lines.next().ok_or("the CSV file is empty")?);
    let index = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| format!("the CSV header has no column {name:?}"))
    };
    let key_index = index(key_column)?;
    let selected: Vec<(String, usize)> = columns
        .iter()
        .map(|c| index(c).map(|i| (c.clone(), i)))
        .collect::<Result<_, _>>()?;
    let mut rows = HashMap::new();
    for (number, line) in lines.enumerate() {
        let fields = csv_fields(line);
        let get = |i: usize| {
            fields.get(i).cloned().ok_or_else(|| {
                format!(
                    "CSV line {} has {} fields, fewer than the header",
                    number + 2,
                    fields.len()
                )
            })
        };
        let values: Vec<AttributeValue> = selected
            .iter()
            .map(|(_, i)| get(*i).map(AttributeValue::S))
            .collect::<Result<_, _>>()?;
        rows.insert(get(key_index)?, values.into_boxed_slice());
    }
    Ok(rows)
}

fn json_value(value: &serde_json::Value) -> Result<AttributeValue, String> {
    Ok(match value {
        serde_json::Value::Null => AttributeValue::Null,
        serde_json::Value::Bool(b) => AttributeValue::Bool(*b),
        serde_json::Value::Number(n) => {
            AttributeValue::N(Number::parse(&n.to_string()).map_err(|e| e.to_string())?)
        }
        serde_json::Value::String(s) => AttributeValue::S(s.clone()),
        other => AttributeValue::S(other.to_string()),
    })
}

fn load_json_lines(
    bytes: &[u8],
    key_column: &str,
    columns: &[String],
) -> Result<HashMap<String, Row>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("JSON Lines are not UTF-8: {e}"))?;
    let mut rows = HashMap::new();
    for (number, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", number + 1))?;
        let Some(key) = object
            .get(key_column)
            .map(json_value)
            .transpose()?
            .as_ref()
            .and_then(key_text)
        else {
            continue;
        };
        let values: Vec<AttributeValue> = columns
            .iter()
            .map(|name| {
                object
                    .get(name)
                    .map(json_value)
                    .transpose()
                    .map(|v| v.unwrap_or(AttributeValue::Null))
            })
            .collect::<Result<_, _>>()?;
        rows.insert(key, values.into_boxed_slice());
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_lines_load() {
        let csv = "id,name,segment\n1,\"Ada, Countess\",gold\n2,Bob,\"said \"\"hi\"\"\"\n";
        let dim = load_dimension(
            csv.into(),
            DimensionFormat::Csv,
            "id",
            &["name".into(), "segment".into()],
        )
        .unwrap();
        assert_eq!(dim.len(), 2);
        assert_eq!(
            dim.value("1", "name"),
            Some(&AttributeValue::S("Ada, Countess".into()))
        );
        assert_eq!(
            dim.value("2", "segment"),
            Some(&AttributeValue::S("said \"hi\"".into()))
        );
        let jsonl = "{\"id\": 7, \"score\": 1.5, \"vip\": true}\n{\"id\": 8, \"score\": null}\n";
        let dim = load_dimension(
            jsonl.into(),
            DimensionFormat::JsonLines,
            "id",
            &["score".into(), "vip".into()],
        )
        .unwrap();
        assert_eq!(
            dim.value("7", "score"),
            Some(&AttributeValue::N(Number::parse("1.5").unwrap()))
        );
        assert_eq!(dim.value("8", "vip"), Some(&AttributeValue::Null));
        assert!(
            load_dimension("a,b\n".into(), DimensionFormat::Csv, "id", &[])
                .unwrap_err()
                .contains("\"id\"")
        );
    }

    #[test]
    fn decimals_keep_their_digits() {
        assert_eq!(decimal_text(12345, 2), "123.45");
        assert_eq!(decimal_text(-5, 3), "-0.005");
        assert_eq!(decimal_text(7, -2), "700");
    }
}
