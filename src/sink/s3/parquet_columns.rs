//! Typed Parquet columns filled from item attributes, next to the item JSON.
//! The column types are the `clickhouse` sink's (same names, same rules).

use std::str::FromStr;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Decimal128Builder, Float64Builder, Int64Builder, ListBuilder, PrimitiveBuilder,
    StringBuilder, TimestampSecondBuilder, UInt64Builder,
};
use arrow_array::{ArrayRef, ArrowPrimitiveType};
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
    match base(&column.column_type) {
        ColumnType::String | ColumnType::Json => strings(values),
        ColumnType::Int64 => primitive(Int64Builder::new(), values, parse_number::<i64>),
        ColumnType::UInt64 => primitive(UInt64Builder::new(), values, parse_number::<u64>),
        ColumnType::Float64 => primitive(Float64Builder::new(), values, parse_number::<f64>),
        ColumnType::Decimal { precision, scale } => {
            let builder = Decimal128Builder::new()
                .with_precision_and_scale(
                    u8::try_from(*precision).unwrap_or(38),
                    i8::try_from(*scale).unwrap_or(0),
                )
                .map_err(|e| e.to_string())?;
            primitive(builder, values, |t| scaled(t, *scale))
        }
        ColumnType::Bool { .. } => {
            let mut b = BooleanBuilder::new();
            for v in values {
                b.append_option(v.as_deref().map(|t| t == "1"));
            }
            Ok(Arc::new(b.finish()))
        }
        ColumnType::DateTime => primitive(
            TimestampSecondBuilder::new().with_timezone("UTC"),
            values,
            |t| unquote(t)?.parse::<i64>().map_err(|e| e.to_string()),
        ),
        ColumnType::ArrayString | ColumnType::Nullable(_) => string_lists(values),
    }
}

/// A column of fixed-width values, each parsed from its text by `parse`.
fn primitive<T: ArrowPrimitiveType>(
    mut builder: PrimitiveBuilder<T>,
    values: &[Option<String>],
    parse: impl Fn(&str) -> Result<T::Native, String>,
) -> Result<ArrayRef, String> {
    for v in values {
        builder.append_option(v.as_deref().map(&parse).transpose()?);
    }
    Ok(Arc::new(builder.finish()))
}

/// A number's JSON text as a number.
fn parse_number<N: FromStr>(text: &str) -> Result<N, String>
where
    N::Err: std::fmt::Display,
{
    text.parse::<N>().map_err(|e| e.to_string())
}

/// A column of strings, from their JSON text.
fn strings(values: &[Option<String>]) -> Result<ArrayRef, String> {
    let mut b = StringBuilder::new();
    for v in values {
        b.append_option(v.as_deref().map(unquote).transpose()?);
    }
    Ok(Arc::new(b.finish()))
}

/// A column of string lists, from their JSON arrays.
fn string_lists(values: &[Option<String>]) -> Result<ArrayRef, String> {
    let mut b = ListBuilder::new(StringBuilder::new());
    for v in values {
        match v {
            Some(text) => {
                let items: Vec<String> = serde_json::from_str(text).map_err(|e| e.to_string())?;
                for item in items {
                    b.values().append_value(item);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Ok(Arc::new(b.finish()))
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
