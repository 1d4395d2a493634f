//! Checks that need more than types: ranges, uniqueness, formats. No I/O.

use std::collections::HashSet;

use super::{LoaderConfig, PipelineConfig, SinkEntry};
use crate::sink::InvalidField;
use crate::transform::{FilterSpec, Stage, TransformConfig};

pub(super) type Invalid = (String, String);

pub(super) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    (field.into(), message.into())
}

/// Returns the first problem found as (field path, message).
pub(super) fn validate(config: &PipelineConfig) -> Result<(), Invalid> {
    if config.state_dir.as_os_str().is_empty() {
        return Err(invalid("state_dir", "must not be empty"));
    }
    if let Some(url) = &config.aws.endpoint_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                "aws.endpoint_url",
                format!("{url:?} must start with http:// or https://"),
            ));
        }
    }
    let source = &config.source;
    if !(1..=1000).contains(&source.batch_size) {
        return Err(invalid(
            "source.batch_size",
            format!(
                "{} is outside 1..=1000 (the GetRecords limit)",
                source.batch_size
            ),
        ));
    }
    if source.idle_poll_min.is_zero() || source.idle_poll_min > source.idle_poll_max {
        return Err(invalid(
            "source.idle_poll_min",
            "must be above zero and at most source.idle_poll_max",
        ));
    }
    for (field, value) in [
        ("source.discovery_interval", source.discovery_interval),
        ("source.max_retry_backoff", source.max_retry_backoff),
        ("source.request_timeout", source.request_timeout),
    ] {
        if value.is_zero() {
            return Err(invalid(field, "must be above zero"));
        }
    }
    if config.tables.is_empty() {
        return Err(invalid(
            "tables",
            "at least one [[tables]] entry is required",
        ));
    }
    let mut names = HashSet::new();
    for (index, table) in config.tables.iter().enumerate() {
        let field = format!("tables[{index}]");
        if table.name.trim().is_empty() {
            return Err(invalid(format!("{field}.name"), "must not be empty"));
        }
        if !names.insert(table.name.as_str()) {
            return Err(invalid(
                format!("{field}.name"),
                format!("table {:?} is listed twice", table.name),
            ));
        }
        if let Some(arn) = &table.stream_arn {
            if !arn.starts_with("arn:") || !arn.contains("/stream/") {
                return Err(invalid(
                    format!("{field}.stream_arn"),
                    format!("{arn:?} is not a DynamoDB stream ARN (arn:…:table/NAME/stream/LABEL)"),
                ));
            }
        }
        validate_snapshot(table, &field)?;
        validate_stage(&field, &table.filters, &table.transforms)?;
    }
    super::kinesis::validate_kinesis(config)?;
    super::coordinator::validate_coordinator(&config.coordinator)?;
    super::dimensions::validate_enrichment(
        config.enrich.as_ref(),
        &config.dimensions,
        config.tables.iter().map(|t| t.enrich.as_slice()),
    )?;
    let tables: Vec<&str> = config.tables.iter().map(|t| t.name.as_str()).collect();
    validate_sinks(&config.sinks)?;
    validate_routing(&config.sinks, &tables)
}

/// Compiles a table's or a sink's filters and transforms.
fn validate_stage(
    field: &str,
    filters: &[FilterSpec],
    transforms: &[TransformConfig],
) -> Result<(), Invalid> {
    Stage::compile(filters, transforms)
        .map(drop)
        .map_err(|err| {
            let place = match field {
                "" => err.field(),
                parent => format!("{parent}.{}", err.field()),
            };
            invalid(place, err.problem())
        })
}

/// Checks that every sink's `tables` names configured tables, and that
/// every table reaches at least one sink.
fn validate_routing(sinks: &[SinkEntry], tables: &[&str]) -> Result<(), Invalid> {
    for (index, sink) in sinks.iter().enumerate() {
        for (t, name) in sink.tables.iter().flatten().enumerate() {
            if !tables.contains(&name.as_str()) {
                return Err(invalid(
                    format!("sinks[{index}].tables[{t}]"),
                    format!("{name:?} is not a configured table ({})", tables.join(", ")),
                ));
            }
        }
    }
    for (index, table) in tables.iter().enumerate() {
        let routed = sinks.iter().any(|s| {
            s.tables
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n == table))
        });
        if !routed {
            return Err(invalid(
                format!("tables[{index}]"),
                format!("no sink takes table {table:?}: add it to a sink's `tables`"),
            ));
        }
    }
    Ok(())
}

/// Checks a table's snapshot settings (DynamoDB allows 1–1,000,000 Scan segments).
fn validate_snapshot(table: &super::TableConfig, field: &str) -> Result<(), Invalid> {
    if !(1..=1_000_000).contains(&table.snapshot_segments) {
        return Err(invalid(
            format!("{field}.snapshot_segments"),
            "must be between 1 and 1000000",
        ));
    }
    if table.snapshot_page_size == Some(0) {
        return Err(invalid(
            format!("{field}.snapshot_page_size"),
            "must be at least 1",
        ));
    }
    for (name, value) in [
        ("snapshot_max_rcu", table.snapshot_max_rcu),
        (
            "snapshot_max_items_per_second",
            table.snapshot_max_items_per_second,
        ),
    ] {
        if value.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            return Err(invalid(
                format!("{field}.{name}"),
                "must be a positive number",
            ));
        }
    }
    Ok(())
}

/// Checks the `[[sinks]]` entries: distinct names, then each entry's own rules.
fn validate_sinks(sinks: &[SinkEntry]) -> Result<(), Invalid> {
    if sinks.is_empty() {
        return Err(invalid("sinks", "at least one [[sinks]] entry is required"));
    }
    let mut sink_names = HashSet::new();
    for (index, sink) in sinks.iter().enumerate() {
        let field = format!("sinks[{index}]");
        if !sink_names.insert(sink.name()) {
            return Err(invalid(
                format!("{field}.name"),
                format!(
                    "two sinks are named {:?}: give each a distinct `name`",
                    sink.name()
                ),
            ));
        }
        sink.sink
            .validate()
            .map_err(|problem| sink_problem(&field, problem))?;
        validate_stage(&field, &sink.filters, &sink.transforms)?;
    }
    Ok(())
}

/// A sink's problem under its entry's path (`sinks[1]`): at the entry
/// itself when the problem names no field.
pub(super) fn sink_problem(entry: &str, problem: InvalidField) -> Invalid {
    match problem.field.as_str() {
        "" => invalid(entry, problem.message),
        field => invalid(format!("{entry}.{field}"), problem.message),
    }
}

/// Checks a loader configuration.
pub(super) fn validate_loader(config: &LoaderConfig) -> Result<(), Invalid> {
    if config.state_dir.as_os_str().is_empty() {
        return Err(invalid("state_dir", "must not be empty"));
    }
    let queue = &config.queue;
    if !(queue.url.starts_with("http://") || queue.url.starts_with("https://")) {
        return Err(invalid(
            "queue.url",
            format!("{:?} must start with http:// or https://", queue.url),
        ));
    }
    if queue.wait_time > std::time::Duration::from_secs(20) {
        return Err(invalid(
            "queue.wait_time",
            "SQS long polls last at most 20s",
        ));
    }
    if queue.visibility_timeout < std::time::Duration::from_secs(2) {
        return Err(invalid("queue.visibility_timeout", "must be at least 2s"));
    }
    if !(1..=10).contains(&queue.max_messages) {
        return Err(invalid("queue.max_messages", "must be 1 to 10"));
    }
    if config.tables.is_empty() {
        return Err(invalid(
            "tables",
            "at least one [[tables]] entry (name and keys) is required",
        ));
    }
    for (index, table) in config.tables.iter().enumerate() {
        if table.keys.is_empty() || table.keys.len() > 2 {
            return Err(invalid(
                format!("tables[{index}].keys"),
                "one or two key attributes",
            ));
        }
        for (k, key) in table.keys.iter().enumerate() {
            if !matches!(key.kind.as_str(), "S" | "N" | "B") {
                return Err(invalid(
                    format!("tables[{index}].keys[{k}].type"),
                    format!("{:?} is not S, N or B", key.kind),
                ));
            }
        }
    }
    validate_stage("", &[], &config.transforms)?;
    for (index, table) in config.tables.iter().enumerate() {
        validate_stage(
            &format!("tables[{index}]"),
            &table.filters,
            &table.transforms,
        )?;
    }
    super::dimensions::validate_enrichment(
        config.enrich.as_ref(),
        &config.dimensions,
        config.tables.iter().map(|t| t.enrich.as_slice()),
    )?;
    let tables: Vec<&str> = config.tables.iter().map(|t| t.name.as_str()).collect();
    validate_sinks(&config.sinks)?;
    validate_routing(&config.sinks, &tables)
}
