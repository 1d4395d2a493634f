//! Typed Parquet columns filled from item attributes, next to the item JSON.
//! The column types are the `clickhouse` sink's (same names, same rules).

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Decimal128Builder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampSecondBuilder, UInt64Builder,
};
use arrow_array::ArrayRef;
use arrow_schema::{DataType, Field, TimeUnit};

use crate::model::{ChangeEvent, Op};
use crate::sink::clickhouse::ColumnType;

/// One typed column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedColumn {
    /// Column name.
    pub name: String,
    /// Source attribute.
    pub attribute: String,
    /// Type (ClickHouse names: String, Int64, Decimal(P,S), …).
    pub column_type: ColumnType,
}

fn base(column_type: &ColumnType) -> &ColumnType {
    match column_type {
        ColumnType::Nullable(inner) => inner,
        other => other,
    }
}

/// The value's JSON text for `event`, or why it does not fit. Removes take
/// their values from the old image, and are null when there is none.
pub fn value_text(column: &TypedColumn, event: &ChangeEvent) -> Result<Option<String>, String> {
    let image = if event.op == Op::Remove {
        event.old_image.as_ref()
    } else {
        event.new_image.as_ref()
    };
    let Some(image) = image else {
        return Ok(None);
    };
    let image = image
        .item()
        .map_err(|e| format!("image does not decode: {e}"))?;
    let mut out = String::new();
    column
        .column_type
        .write_json(image.get(&column.attribute), &mut out)
        .map_err(|reason| {
            format!(
                "attribute {:?} for column {}: {reason}",
                column.attribute, column.name
            )
        })?;
    Ok((out != "null").then_some(out))
}

/// The Arrow field of a column (always nullable: removes may carry no image).
pub fn field(column: &TypedColumn) -> Field {
    let data_type = match base(&column.column_type) {
        ColumnType::String | ColumnType::Json => DataType::Utf8,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::UInt64 => DataType::UInt64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Decimal { precision, scale } => DataType::Decimal128(
            u8::try_from(*precision).unwrap_or(38),
            i8::try_from(*scale).unwrap_or(0),
        ),
        ColumnType::Bool { .. } => DataType::Boolean,
        ColumnType::DateTime => DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
        ColumnType::ArrayString | ColumnType::Nullable(_) => {
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
        }
    };
    Field::new(&column.name, data_type, true)
}

/// Builds a column from value texts that [`value_text`] accepted.
pub fn build(column: &TypedColumn, values: &[Option<String>]) -> Result<ArrayRef, String> {
    let ty = base(&column.column_type);
    Ok(match ty {
        ColumnType::String | ColumnType::Json => {
            let mut b = StringBuilder::new();
            for v in values {
                b.append_option(v.as_deref().map(unquote).transpose()?);
            }
            Arc::new(b.finish())
        }
        ColumnType::Int64 => {
            let mut b = Int64Builder::new();
            for v in values {
                b.append_option(
                    v.as_deref()
                        .map(|t| t.parse::<i64>().map_err(|e| e.to_string()))
                        .transpose()?,
                );
            }
            Arc::new(b.finish())
        }
        ColumnType::UInt64 => {
            let mut b = UInt64Builder::new();
            for v in values {
                b.append_option(
                    v.as_deref()
                        .map(|t| t.parse::<u64>().map_err(|e| e.to_string()))
                        .transpose()?,
                );
            }
            Arc::new(b.finish())
        }
        ColumnType::Float64 => {
            let mut b = Float64Builder::new();
            for v in values {
                b.append_option(
                    v.as_deref()
                        .map(|t| t.parse::<f64>().map_err(|e| e.to_string()))
                        .transpose()?,
                );
            }
            Arc::new(b.finish())
        }
        ColumnType::Decimal { precision, scale } => {
            let mut b = Decimal128Builder::new()
                .with_precision_and_scale(
                    u8::try_from(*precision).unwrap_or(38),
                    i8::try_from(*scale).unwrap_or(0),
                )
                .map_err(|e| e.to_string())?;
            for v in values {
                b.append_option(v.as_deref().map(|t| scaled(t, *scale)).transpose()?);
            }
            Arc::new(b.finish())
        }
        ColumnType::Bool { .. } => {
            let mut b = BooleanBuilder::new();
            for v in values {
                b.append_option(v.as_deref().map(|t| t == "1"));
            }
            Arc::new(b.finish())
        }
        ColumnType::DateTime => {
            let mut b = TimestampSecondBuilder::new().with_timezone("UTC");
            for v in values {
                b.append_option(
                    v.as_deref()
                        .map(|t| unquote(t)?.parse::<i64>().map_err(|e| e.to_string()))
                        .transpose()?,
                );
            }
            Arc::new(b.finish())
        }
        ColumnType::ArrayString | ColumnType::Nullable(_) => {
            let mut b = ListBuilder::new(StringBuilder::new());
            for v in values {
                match v {
                    Some(text) => {
                        let items: Vec<String> =
                            serde_json::from_str(text).map_err(|e| e.to_string())?;
                        for item in items {
                            b.values().append_value(item);
                        }
                        b.append(true);
                    }
                    None => b.append(false),
                }
            }
            Arc::new(b.finish())
        }
    })
}

fn unquote(text: &str) -> Result<String, String> {
    serde_json::from_str::<String>(text).map_err(|e| e.to_string())
}

/// Plain decimal text as an integer scaled by 10^scale (the text fits the scale).
fn scaled(text: &str, scale: u32) -> Result<i128, String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let padded = format!("{int}{frac:0<width$}", width = scale as usize);
    let value: i128 = padded.parse().map_err(|e| format!("{text}: {e}"))?;
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_scaled_exactly() {
        assert_eq!(scaled("12.5", 2), Ok(1250));
        assert_eq!(scaled("-0.25", 4), Ok(-2500));
        assert_eq!(
            scaled("99999999999999999999.1234567891", 10),
            Ok(999999999999999999991234567891)
        );
    }
}
