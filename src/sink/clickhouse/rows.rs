//! One change event as one JSONEachRow line of a target table.

use std::fmt::Write as _;

use base64::Engine as _;

use super::column_type::push_json_string;
use super::ddl::TargetTable;
use super::server::Capabilities;
use crate::config::ClickHouseMode;
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

/// Appends `event` as a JSON line for `table` to `out` (nothing is appended on error).
pub fn encode_row(
    table: &TargetTable,
    event: &ChangeEvent,
    caps: Capabilities,
    out: &mut String,
) -> Result<(), RowError> {
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
) -> Result<(), RowError> {
    out.push('{');
    for key in &table.keys {
        let value = event
            .keys
            .get(&key.name)
            .ok_or_else(|| RowError::Reject(format!("key attribute {:?} is missing", key.name)))?;
        push_json_string(out, &key.name);
        out.push(':');
        match value {
            AttributeValue::S(s) => push_json_string(out, s),
            AttributeValue::N(n) => push_json_string(out, n.as_str()),
            AttributeValue::B(b) => {
                push_json_string(out, &base64::engine::general_purpose::STANDARD.encode(b))
            }
            other => {
                return Err(RowError::Reject(format!(
                    "key attribute {:?} is {}",
                    key.name,
                    other.type_tag()
                )))
            }
        }
        out.push(',');
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
            out.push_str("\"_item\":");
            push_json_string(out, &item_json(event.new_image.as_ref()));
            let _ = write!(
                out,
                ",\"_version\":{digits},\"_is_deleted\":{},\"_approx_time_ms\":{approx}",
                u8::from(!event.op.is_upsert())
            );
            event
                .op
                .is_upsert()
                .then_some(event.new_image.as_ref())
                .flatten()
        }
        ClickHouseMode::Changelog => {
            out.push_str("\"_op\":");
            push_json_string(out, op_name(event));
            out.push_str(",\"_new\":");
            push_json_string(out, &item_json(event.new_image.as_ref()));
            out.push_str(",\"_old\":");
            push_json_string(out, &item_json(event.old_image.as_ref()));
            let _ = write!(out, ",\"_version\":{digits},\"_sequence\":");
            push_json_string(out, event.position.sequence.as_str());
            out.push_str(",\"_shard\":");
            push_json_string(out, &event.position.shard);
            out.push_str(",\"_event_id\":");
            push_json_string(out, &event.event_id);
            let _ = write!(
                out,
                ",\"_approx_time_ms\":{approx},\"_ttl_delete\":{}",
                u8::from(event.ttl_delete)
            );
            event.new_image.as_ref().or(event.old_image.as_ref())
        }
    };
    // Tombstones of the state layout carry no mapped values (the columns take their defaults).
    if let Some(image) = image.filter(|_| !table.columns.is_empty()) {
        let image = image
            .item()
            .map_err(|e| RowError::Reject(format!("image does not decode: {e}")))?;
        for column in &table.columns {
            out.push(',');
            push_json_string(out, &column.name);
            out.push(':');
            column
                .column_type
                .write_json(image.get(&column.attribute), out)
                .map_err(|reason| {
                    RowError::Reject(format!(
                        "attribute {:?} for column {}: {reason}",
                        column.attribute, column.name
                    ))
                })?;
        }
    }
    out.push_str("}\n");
    Ok(())
}

fn op_name(event: &ChangeEvent) -> &'static str {
    event.op.as_str()
}

/// An image's DynamoDB JSON, empty when there is none.
fn item_json(image: Option<&Image>) -> Cow<'_, str> {
    image.map(Image::json_text).unwrap_or_default()
}
