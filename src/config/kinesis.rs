//! Checks of the Kinesis source settings: per table, and across the tables
//! that share one Kinesis stream (they share one reader per shard, so the
//! stream-wide policies must agree).

use std::collections::HashMap;

use super::validate::{invalid, Invalid};
use super::{PipelineConfig, SnapshotMode, StartPosition, TableConfig};

impl TableConfig {
    /// `start_timestamp` in milliseconds since the Unix epoch, when set and valid.
    pub fn start_timestamp_ms(&self) -> Option<i64> {
        let text = self.start_timestamp.as_deref()?;
        let time = humantime::parse_rfc3339_weak(text).ok()?;
        let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
        i64::try_from(since.as_millis()).ok()
    }
}

/// Checks the Kinesis fields of every table and of the tables sharing a stream.
pub(super) fn validate_kinesis(config: &PipelineConfig) -> Result<(), Invalid> {
    let source = &config.source;
    if !(1..=10_000).contains(&source.kinesis_batch_size) {
        return Err(invalid(
            "source.kinesis_batch_size",
            format!(
                "{} is outside 1..=10000 (the Kinesis GetRecords limit)",
                source.kinesis_batch_size
            ),
        ));
    }
    if let Some(url) = &config.aws.kinesis_endpoint_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                "aws.kinesis_endpoint_url",
                format!("{url:?} must start with http:// or https://"),
            ));
        }
    }
    let mut by_stream: HashMap<&str, Vec<(usize, &TableConfig)>> = HashMap::new();
    for (index, table) in config.tables.iter().enumerate() {
        validate_table(table, &format!("tables[{index}]"))?;
        if table.kinesis_stream.is_some() && !cfg!(feature = "kinesis") {
            return Err(invalid(
                format!("tables[{index}].kinesis_stream"),
                crate::error_text::not_built("the Kinesis source", "kinesis"),
            ));
        }
        if let Some(stream) = &table.kinesis_stream {
            by_stream.entry(stream).or_default().push((index, table));
        }
    }
    for tables in by_stream.values() {
        validate_shared(tables)?;
    }
    Ok(())
}

fn validate_table(table: &TableConfig, field: &str) -> Result<(), Invalid> {
    let kinesis = table.kinesis_stream.as_deref();
    if let Some(stream) = kinesis {
        if stream.trim().is_empty() {
            return Err(invalid(
                format!("{field}.kinesis_stream"),
                "must not be empty",
            ));
        }
        if stream.starts_with("arn:") && !stream.contains(":stream/") {
            return Err(invalid(
                format!("{field}.kinesis_stream"),
                format!("{stream:?} is not a Kinesis stream ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)"),
            ));
        }
        if table.stream_arn.is_some() {
            return Err(invalid(
                format!("{field}.stream_arn"),
                "a table reads either its DynamoDB stream (stream_arn) or a Kinesis stream (kinesis_stream), not both",
            ));
        }
    }
    let at_timestamp = table.start_position == StartPosition::AtTimestamp;
    if at_timestamp && kinesis.is_none() {
        return Err(invalid(
            format!("{field}.start_position"),
            "\"at_timestamp\" needs a Kinesis source (kinesis_stream): DynamoDB Streams has no timestamp iterator",
        ));
    }
    match (&table.start_timestamp, at_timestamp) {
        (None, true) => Err(invalid(
            format!("{field}.start_timestamp"),
            "required with start_position = \"at_timestamp\" (RFC 3339, e.g. \"2026-11-29T12:00:00Z\")",
        )),
        (Some(_), false) => Err(invalid(
            format!("{field}.start_timestamp"),
            "only used with start_position = \"at_timestamp\"",
        )),
        (Some(text), true) if table.start_timestamp_ms().is_none() => Err(invalid(
            format!("{field}.start_timestamp"),
            format!("{text:?} is not an RFC 3339 time after 1970 (e.g. \"2026-11-29T12:00:00Z\")"),
        )),
        _ => Ok(()),
    }
}

/// Tables on one Kinesis stream share its readers: their stream-wide
/// settings must agree, and snapshots need the stream to themselves.
fn validate_shared(tables: &[(usize, &TableConfig)]) -> Result<(), Invalid> {
    let Some((_, lead)) = tables.first() else {
        return Ok(());
    };
    for (index, table) in &tables[1..] {
        let field = format!("tables[{index}]");
        let differs = [
            (
                "start_position",
                table.start_position != lead.start_position,
            ),
            (
                "start_timestamp",
                table.start_timestamp != lead.start_timestamp,
            ),
            ("on_trimmed", table.on_trimmed != lead.on_trimmed),
            (
                "on_decode_error",
                table.on_decode_error != lead.on_decode_error,
            ),
        ];
        if let Some((name, _)) = differs.iter().find(|(_, differs)| *differs) {
            return Err(invalid(
                format!("{field}.{name}"),
                format!(
                    "tables {:?} and {:?} share Kinesis stream {:?}, so their {name} must be the same",
                    lead.name,
                    table.name,
                    lead.kinesis_stream.as_deref().unwrap_or_default()
                ),
            ));
        }
    }
    if tables.len() > 1 {
        if let Some((index, table)) = tables
            .iter()
            .find(|(_, t)| t.snapshot != SnapshotMode::Never)
        {
            return Err(invalid(
                format!("tables[{index}].snapshot"),
                format!(
                    "table {:?} shares its Kinesis stream with other tables; snapshots of a shared Kinesis \
                     stream are not supported yet (give the table a stream of its own, or use snapshot = \"never\")",
                    table.name
                ),
            ));
        }
    }
    Ok(())
}
