//! One change event as one TabSeparated row of a target table, its fields
//! in [`TargetTable::column_names`] order.

use std::fmt::Write as _;

use base64::Engine as _;

use super::ddl::TargetTable;
use super::inferred_rows::{write_inferred, Findings};
use super::server::Capabilities;
use super::tsv::{push_field, push_json_value};
use super::ClickHouseMode;
use crate::model::{AttributeValue, ChangeEvent, Image};
use std::borrow::Cow;

/// Why an event cannot become a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowError {
    /// This record does not fit the table (dead-letter it).
    Reject(String),
    /// No record can be written (the server cannot hold the stream's versions).
    Fatal(String),
}

/// Appends `event` as a TabSeparated row for `table` to `out` (nothing is
/// appended on error). Says what the inferred columns found: values left
/// out of columns that cannot hold them (they stay in the item column),
/// and whether a value needs a column the sink could make.
pub fn encode_row(
    table: &TargetTable,
    event: &ChangeEvent,
    caps: Capabilities,
    out: &mut String,
) -> Result<Findings, RowError> {
    let start = out.len();
    let result = write_row(table, event, caps, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_row(
    table: &TargetTable,
    event: &ChangeEvent,
    caps: Capabilities,
    out: &mut String,
) -> Result<Findings, RowError> {
    for key in &table.keys {
        let value = event
            .keys
            .get(&key.name)
            .ok_or_else(|| RowError::Reject(format!("key attribute {:?} is missing", key.name)))?;
        match value {
            AttributeValue::S(s) => push_field(out, s),
            AttributeValue::N(n) => push_field(out, n.as_str()),
            AttributeValue::B(b) => {
                push_field(out, &base64::engine::general_purpose::STANDARD.encode(b))
            }
            other => {
                return Err(RowError::Reject(format!(
                    "key attribute {:?} is {}",
                    key.name,
                    other.type_tag()
                )))
            }
        }
        out.push('\t');
    }
    let digits = event.version().digits();
    if !caps.uint256 && digits.parse::<u64>().is_err() {
        return Err(RowError::Fatal(format!(
            "sequence number {digits} does not fit UInt64, the widest version type of this ClickHouse server; \
             use ClickHouse 21.7 or later, where versions are UInt256"
        )));
    }
    let approx = event.approx_time_ms.unwrap_or(0);
    let image = match table.mode {
        ClickHouseMode::State => {
            if event.op.is_upsert() && event.new_image.is_none() {
                return Err(RowError::Reject(
                    "the change has no new image: the stream view must be NEW_IMAGE or NEW_AND_OLD_IMAGES".into(),
                ));
            }
            push_field(out, &item_json(event.new_image.as_ref()));
            let _ = write!(
                out,
                "\t{digits}\t{}\t{approx}",
                u8::from(!event.op.is_upsert())
            );
            event
                .op
                .is_upsert()
                .then_some(event.new_image.as_ref())
                .flatten()
        }
        ClickHouseMode::Changelog => {
            push_field(out, op_name(event));
            out.push('\t');
            push_field(out, &item_json(event.new_image.as_ref()));
            out.push('\t');
            push_field(out, &item_json(event.old_image.as_ref()));
            let _ = write!(out, "\t{digits}\t");
            push_field(out, event.position.sequence.as_str());
            out.push('\t');
            push_field(out, &event.position.shard);
            out.push('\t');
            push_field(out, &event.event_id);
            let _ = write!(out, "\t{approx}\t{}", u8::from(event.ttl_delete));
            event.new_image.as_ref().or(event.old_image.as_ref())
        }
    };
    let findings = if table.columns.is_empty() && !table.inferred {
        Findings::default()
    } else {
        write_columns(table, image, out)?
    };
    out.push('\n');
    Ok(findings)
}

/// The typed columns' fields: inferred ones from the image's text when it
/// can, else every column from the decoded item.
fn write_columns(
    table: &TargetTable,
    image: Option<&Image>,
    out: &mut String,
) -> Result<Findings, RowError> {
    if let Some(image) = image {
        if table.inferred {
            let start = out.len();
            if let Some(findings) = write_inferred(&table.columns, &table.keys, image, out) {
                return Ok(findings);
            }
            out.truncate(start);
        }
    }
    let untyped = write_mapped(table, image, out)?;
    Ok(Findings {
        untyped,
        unplanned: false,
    })
}

/// The mapped columns' values from `image`; without one (a state-layout
/// tombstone) each column gets its type's default. Returns how many values
/// did not fit their (lenient) column and were left out.
fn write_mapped(
    table: &TargetTable,
    image: Option<&Image>,
    out: &mut String,
) -> Result<u32, RowError> {
    let item = image
        .map(|image| {
            image
                .item()
                .map_err(|e| RowError::Reject(format!("image does not decode: {e}")))
        })
        .transpose()?;
    let mut json = String::new();
    let mut untyped = 0;
    for column in &table.columns {
        out.push('\t');
        let Some(item) = item else {
            out.push_str(column.column_type.tsv_default());
            continue;
        };
        let value = item.get(&column.attribute);
        if let Some(kind) = column.inferred {
            match value {
                None | Some(AttributeValue::Null) => {
                    out.push_str(column.column_type.tsv_default());
                    continue;
                }
                Some(value) if !kind.holds(value) => {
                    out.push_str(column.column_type.tsv_default());
                    untyped += 1;
                    continue;
                }
                Some(_) => {}
            }
        }
        json.clear();
        let start = out.len();
        let fits = column
            .column_type
            .write_json(value, &mut json)
            .and_then(|()| push_json_value(out, &json));
        match fits {
            Ok(()) => {}
            Err(_) if column.inferred.is_some() => {
                out.truncate(start);
                out.push_str(column.column_type.tsv_default());
                untyped += 1;
            }
            Err(reason) => {
                return Err(RowError::Reject(format!(
                    "attribute {:?} for column {}: {reason}",
                    column.attribute, column.name
                )))
            }
        }
    }
    Ok(untyped)
}

fn op_name(event: &ChangeEvent) -> &'static str {
    event.op.as_str()
}

/// An image's DynamoDB JSON, empty when there is none.
fn item_json(image: Option<&Image>) -> Cow<'_, str> {
    image.map(Image::json_text).unwrap_or_default()
}
