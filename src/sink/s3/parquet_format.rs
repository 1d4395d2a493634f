//! Change events as Parquet: one row per change, images as DynamoDB JSON
//! strings (lossless), and the way back for the loader.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::parquet_columns::{build, field, value_text, TypedColumn};
use super::parquet_error::{ParquetFileError, RowError};
use crate::decode::{decode_image, decode_item};
use crate::model::{ChangeEvent, Image, Op, Position, SequenceNumber};

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new("op", DataType::Utf8, false),
        Field::new("keys", DataType::Utf8, false),
        Field::new("new_image", DataType::Utf8, true),
        Field::new("old_image", DataType::Utf8, true),
        Field::new("shard", DataType::Utf8, false),
        Field::new("sequence", DataType::Utf8, false),
        Field::new("approx_time_ms", DataType::Int64, true),
        Field::new("ttl_delete", DataType::Boolean, false),
        Field::new("event_id", DataType::Utf8, false),
        Field::new("size_bytes", DataType::UInt64, false),
    ]))
}

/// The columns every file has, before any typed one; typed columns never
/// take these names.
pub const FIXED_COLUMNS: [&str; 11] = [
    "table",
    "op",
    "keys",
    "new_image",
    "old_image",
    "shard",
    "sequence",
    "approx_time_ms",
    "ttl_delete",
    "event_id",
    "size_bytes",
];

fn op_name(op: Op) -> &'static str {
    op.as_str()
}

/// Encodes events as one Parquet file (Snappy), with `typed` columns after
/// the fixed ones. Every event's typed values must have passed
/// [`value_text`] (the sink rejects the others first).
pub fn encode_events(
    events: &[&ChangeEvent],
    typed: &[TypedColumn],
) -> Result<Vec<u8>, ParquetFileError> {
    let filled = typed
        .iter()
        .map(|column| {
            let values = events
                .iter()
                .map(|e| value_text(column, e))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((column.clone(), values))
        })
        .collect::<Result<Vec<_>, ParquetFileError>>()?;
    encode_filled(events, &filled)
}

/// Encodes events as one Parquet file (Snappy), with typed columns after
/// the fixed ones, each with its values (one per event, as JSON text
/// [`build`] accepts).
pub fn encode_filled(
    events: &[&ChangeEvent],
    typed: &[(TypedColumn, Vec<Option<String>>)],
) -> Result<Vec<u8>, ParquetFileError> {
    let mut columns = fixed_columns(events)?;
    let mut fields: Vec<Field> = schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    for (column, values) in typed {
        if values.len() != events.len() {
            return Err(ParquetFileError::Shape {
                column: column.name.clone(),
                values: values.len(),
                events: events.len(),
            });
        }
        columns.push(build(column, values)?);
        fields.push(field(column));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
        .map_err(ParquetFileError::arrow("build the record batch"))?;
    write_file(&batch)
}

/// The fixed columns of `events`, in [`FIXED_COLUMNS`] order.
fn fixed_columns(events: &[&ChangeEvent]) -> Result<Vec<ArrayRef>, ParquetFileError> {
    let keys: Vec<String> = events
        .iter()
        .map(|e| {
            serde_json::to_string(&e.keys).map_err(|source| ParquetFileError::Keys {
                event_id: e.event_id.clone(),
                source,
            })
        })
        .collect::<Result<_, _>>()?;
    let image_texts = |image: fn(&ChangeEvent) -> &Option<Image>| -> ArrayRef {
        Arc::new(StringArray::from_iter(
            events.iter().map(|e| image(e).as_ref().map(Image::json)),
        ))
    };
    let texts = |text: fn(&ChangeEvent) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            events.iter().map(|e| text(e)),
        ))
    };
    Ok(vec![
        texts(|e| &e.table),
        texts(|e| op_name(e.op)),
        Arc::new(StringArray::from_iter_values(keys)),
        image_texts(|e| &e.new_image),
        image_texts(|e| &e.old_image),
        texts(|e| &e.position.shard),
        texts(|e| e.position.sequence.as_str()),
        Arc::new(Int64Array::from_iter(
            events.iter().map(|e| e.approx_time_ms),
        )),
        Arc::new(BooleanArray::from(
            events.iter().map(|e| e.ttl_delete).collect::<Vec<_>>(),
        )),
        texts(|e| &e.event_id),
        Arc::new(UInt64Array::from_iter_values(
            events.iter().map(|e| e.size_bytes),
        )),
    ])
}

/// `batch` as a Parquet file (Snappy).
fn write_file(batch: &RecordBatch) -> Result<Vec<u8>, ParquetFileError> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(properties))
        .map_err(ParquetFileError::parquet("start the file"))?;
    writer
        .write(batch)
        .map_err(ParquetFileError::parquet("write the rows"))?;
    writer
        .close()
        .map_err(ParquetFileError::parquet("finish the file"))?;
    Ok(out)
}

/// Decodes a Parquet object written by [`encode_events`].
pub fn decode_events(bytes: bytes::Bytes) -> Result<Vec<ChangeEvent>, ParquetFileError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(ParquetFileError::parquet("read it as a Parquet file"))?
        .build()
        .map_err(ParquetFileError::parquet("start reading its rows"))?;
    let mut events = Vec::new();
    for batch in reader {
        let batch = batch.map_err(ParquetFileError::arrow("read a row group"))?;
        let columns = FixedColumns::of(&batch)?;
        for row in 0..batch.num_rows() {
            let event = columns
                .event(row)
                .map_err(|problem| ParquetFileError::Row {
                    row: events.len() + 1,
                    problem,
                })?;
            events.push(event);
        }
    }
    Ok(events)
}

/// The fixed columns of one record batch, typed.
struct FixedColumns<'a> {
    table: &'a StringArray,
    op: &'a StringArray,
    keys: &'a StringArray,
    new_image: &'a StringArray,
    old_image: &'a StringArray,
    shard: &'a StringArray,
    sequence: &'a StringArray,
    event_id: &'a StringArray,
    approx_time_ms: &'a Int64Array,
    ttl_delete: &'a BooleanArray,
    size_bytes: &'a UInt64Array,
}

impl<'a> FixedColumns<'a> {
    fn of(batch: &'a RecordBatch) -> Result<Self, ParquetFileError> {
        let column = |name: &'static str| {
            batch
                .column_by_name(name)
                .ok_or(ParquetFileError::MissingColumn(name))
        };
        let wrong = |column, expected| ParquetFileError::ColumnType { column, expected };
        let text = |name: &'static str| {
            column(name)?
                .as_string_opt::<i32>()
                .ok_or_else(|| wrong(name, "a string column"))
        };
        Ok(Self {
            table: text("table")?,
            op: text("op")?,
            keys: text("keys")?,
            new_image: text("new_image")?,
            old_image: text("old_image")?,
            shard: text("shard")?,
            sequence: text("sequence")?,
            event_id: text("event_id")?,
            approx_time_ms: column("approx_time_ms")?
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| wrong("approx_time_ms", "Int64"))?,
            ttl_delete: column("ttl_delete")?
                .as_boolean_opt()
                .ok_or_else(|| wrong("ttl_delete", "Boolean"))?,
            size_bytes: column("size_bytes")?
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(|| wrong("size_bytes", "UInt64"))?,
        })
    }

    /// The change in row `row`.
    fn event(&self, row: usize) -> Result<ChangeEvent, RowError> {
        let image =
            |column: &'static str, array: &StringArray| -> Result<Option<Image>, RowError> {
                if array.is_null(row) {
                    return Ok(None);
                }
                decode_image(array.value(row))
                    .map(Some)
                    .map_err(|source| RowError::Json { column, source })
            };
        let op = match self.op.value(row) {
            "insert" => Op::Insert,
            "modify" => Op::Modify,
            "remove" => Op::Remove,
            "read" => Op::Read,
            other => return Err(RowError::UnknownOp(other.to_owned())),
        };
        let sequence = SequenceNumber::parse(self.sequence.value(row))?;
        Ok(ChangeEvent {
            table: Arc::from(self.table.value(row)),
            op,
            keys: decode_item(self.keys.value(row)).map_err(|source| RowError::Json {
                column: "keys",
                source,
            })?,
            new_image: image("new_image", self.new_image)?,
            old_image: image("old_image", self.old_image)?,
            position: Position {
                shard: Arc::from(self.shard.value(row)),
                sequence: sequence.clone(),
            },
            version: sequence,
            approx_time_ms: (!self.approx_time_ms.is_null(row))
                .then(|| self.approx_time_ms.value(row)),
            ttl_delete: self.ttl_delete.value(row),
            event_id: self.event_id.value(row).to_owned(),
            size_bytes: self.size_bytes.value(row),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttributeValue, Item, Number};

    #[test]
    fn fixed_columns_are_the_schema() {
        let names: Vec<String> = schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, FIXED_COLUMNS);
    }

    #[test]
    fn events_round_trip() {
        let event = |op: Op, seq: &str| ChangeEvent {
            table: Arc::from("orders"),
            op,
            keys: Item::from([("pk".to_owned(), AttributeValue::S("a".into()))]),
            new_image: (op != Op::Remove).then(|| {
                Item::from([
                    ("pk".to_owned(), AttributeValue::S("a".into())),
                    (
                        "n".to_owned(),
                        AttributeValue::N(Number::parse("1.50").unwrap()),
                    ),
                    ("b".to_owned(), AttributeValue::Bs(vec![vec![0, 1]])),
                ])
                .into()
            }),
            old_image: None,
            position: Position {
                shard: Arc::from("shardId-1"),
                sequence: SequenceNumber::parse(seq).unwrap(),
            },
            version: SequenceNumber::parse(seq).unwrap(),
            approx_time_ms: (op == Op::Insert).then_some(5),
            ttl_delete: op == Op::Remove,
            event_id: format!("e{seq}"),
            size_bytes: 12,
        };
        let events = [
            event(Op::Insert, "000000000000000000001"),
            event(Op::Remove, "000000000000000000002"),
        ];
        let refs: Vec<&ChangeEvent> = events.iter().collect();
        let bytes = encode_events(&refs, &[]).unwrap();
        assert_eq!(decode_events(bytes.into()).unwrap(), events);
        assert!(decode_events(bytes::Bytes::from_static(b"nope")).is_err());
    }
}
