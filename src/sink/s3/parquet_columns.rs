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

use super::parquet_error::{ColumnValueError, ParquetFileError, ParseFailure};
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
pub fn value_text(
    column: &TypedColumn,
    event: &ChangeEvent,
) -> Result<Option<String>, ColumnValueError> {
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
        .map_err(|source| ColumnValueError::Image { source })?;
    let mut out = String::new();
    column
        .column_type
        .write_json(image.get(&column.attribute), &mut out)
        .map_err(|reason| ColumnValueError::DoesNotFit {
            attribute: column.attribute.clone(),
            column: column.name.clone(),
            reason,
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
pub fn build(
    column: &TypedColumn,
    values: &[Option<String>],
) -> Result<ArrayRef, ParquetFileError> {
    let parse = ValueParser { column };
    match base(&column.column_type) {
        ColumnType::String | ColumnType::Json => parse.strings(values),
        ColumnType::Int64 => parse.primitive(Int64Builder::new(), values, "Int64", parse_number),
        ColumnType::UInt64 => parse.primitive(UInt64Builder::new(), values, "UInt64", parse_number),
        ColumnType::Float64 => {
            parse.primitive(Float64Builder::new(), values, "Float64", parse_number)
        }
        ColumnType::Decimal { precision, scale } => {
            let builder = Decimal128Builder::new()
                .with_precision_and_scale(
                    u8::try_from(*precision).unwrap_or(38),
                    i8::try_from(*scale).unwrap_or(0),
                )
                .map_err(ParquetFileError::arrow("make a Decimal128 column"))?;
            parse.primitive(builder, values, "Decimal128", |t| scaled(t, *scale))
        }
        ColumnType::Bool { .. } => {
            let mut b = BooleanBuilder::new();
            for v in values {
                b.append_option(v.as_deref().map(|t| t == "1"));
            }
            Ok(Arc::new(b.finish()))
        }
        ColumnType::DateTime => parse.primitive(
            TimestampSecondBuilder::new().with_timezone("UTC"),
            values,
            "Timestamp(Second)",
            |t| parse_number(&unquote(t)?),
        ),
        ColumnType::ArrayString | ColumnType::Nullable(_) => parse.string_lists(values),
    }
}

/// Parses one column's value texts, naming the column and the text when
/// one does not parse.
struct ValueParser<'a> {
    column: &'a TypedColumn,
}

impl ValueParser<'_> {
    fn failed(&self, text: &str, expected: &'static str, reason: ParseFailure) -> ParquetFileError {
        ParquetFileError::Parse {
            column: self.column.name.clone(),
            text: text.to_owned(),
            expected,
            reason,
        }
    }

    /// A column of fixed-width values, each parsed from its text by `parse`.
    fn primitive<T: ArrowPrimitiveType>(
        &self,
        mut builder: PrimitiveBuilder<T>,
        values: &[Option<String>],
        expected: &'static str,
        parse: impl Fn(&str) -> Result<T::Native, ParseFailure>,
    ) -> Result<ArrayRef, ParquetFileError> {
        for value in values {
            let parsed = value
                .as_deref()
                .map(|text| parse(text).map_err(|reason| self.failed(text, expected, reason)))
                .transpose()?;
            builder.append_option(parsed);
        }
        Ok(Arc::new(builder.finish()))
    }

    /// A column of strings, from their JSON text.
    fn strings(&self, values: &[Option<String>]) -> Result<ArrayRef, ParquetFileError> {
        let mut b = StringBuilder::new();
        for v in values {
            let text = v
                .as_deref()
                .map(|text| unquote(text).map_err(|reason| self.failed(text, "Utf8", reason)))
                .transpose()?;
            b.append_option(text);
        }
        Ok(Arc::new(b.finish()))
    }

    /// A column of string lists, from their JSON arrays.
    fn string_lists(&self, values: &[Option<String>]) -> Result<ArrayRef, ParquetFileError> {
        let mut b = ListBuilder::new(StringBuilder::new());
        for v in values {
            match v {
                Some(text) => {
                    let items: Vec<String> = serde_json::from_str(text)
                        .map_err(|e| self.failed(text, "List(Utf8)", e.into()))?;
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
}

/// A number's JSON text as a number, or the parser's finding.
fn parse_number<N: FromStr>(text: &str) -> Result<N, ParseFailure>
where
    N::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(text.parse::<N>()?)
}

/// A JSON string's value, or the parser's finding.
fn unquote(text: &str) -> Result<String, ParseFailure> {
    Ok(serde_json::from_str::<String>(text)?)
}

/// Plain decimal text as an integer scaled by 10^scale (the text fits the scale).
fn scaled(text: &str, scale: u32) -> Result<i128, ParseFailure> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let padded = format!("{int}{frac:0<width$}", width = scale as usize);
    let value: i128 = padded.parse()?;
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_scaled_exactly() {
        assert_eq!(scaled("12.5", 2).ok(), Some(1250));
        assert_eq!(scaled("-0.25", 4).ok(), Some(-2500));
        assert_eq!(
            scaled("99999999999999999999.1234567891", 10).ok(),
            Some(999999999999999999991234567891)
        );
        assert!(scaled("1e5", 2).is_err());
    }
}
