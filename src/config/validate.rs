//! Checks that need more than types: ranges, uniqueness, formats. No I/O.

use std::collections::HashSet;

use super::{BatchConfig, ClickHouseSinkConfig, LoaderConfig, PipelineConfig, SinkConfig};
use crate::sink::clickhouse::ColumnType;
use crate::transform::DimensionFormat;

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
    }
    super::kinesis::validate_kinesis(config)?;
    super::coordinator::validate_coordinator(&config.coordinator)?;
    validate_sinks(&config.sinks)
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

/// Checks the `[[sinks]]` entries.
fn validate_sinks(sinks: &[SinkConfig]) -> Result<(), Invalid> {
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
        validate_batch(sink.batch(), &format!("{field}.batch"))?;
        match sink {
            SinkConfig::Sqlite(sqlite) => {
                if sqlite.path.as_os_str().is_empty() {
                    return Err(invalid(format!("{field}.path"), "must not be empty"));
                }
            }
            SinkConfig::Clickhouse(clickhouse) => validate_clickhouse(clickhouse, &field)?,
            SinkConfig::Postgres(postgres) => {
                let identifier =
                    |text: &str| text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if postgres.schema.is_empty() || !identifier(&postgres.schema) {
                    return Err(invalid(
                        format!("{field}.schema"),
                        "must be letters, digits and underscores",
                    ));
                }
                if !identifier(&postgres.table_prefix) {
                    return Err(invalid(
                        format!("{field}.table_prefix"),
                        "must be letters, digits and underscores",
                    ));
                }
                if postgres.dialect == super::SqlDialect::Cratedb
                    && postgres.exactly_once == Some(true)
                {
                    return Err(invalid(
                        format!("{field}.exactly_once"),
                        "CrateDB has no multi-statement transactions: exactly_once needs dialect = \"postgres\"",
                    ));
                }
                if postgres.dialect == super::SqlDialect::Cratedb
                    && postgres.write_method == Some(super::PgWriteMethod::Copy)
                {
                    return Err(invalid(
                        format!("{field}.write_method"),
                        "CrateDB has no COPY FROM STDIN: use write_method = \"insert\"",
                    ));
                }
                if postgres.url.expose().trim().is_empty() {
                    return Err(invalid(format!("{field}.url"), "must not be empty"));
                }
                if let Err(message) = crate::sink::postgres::parse_url(postgres.url.expose()) {
                    return Err(invalid(format!("{field}.url"), message));
                }
            }
            SinkConfig::S3(s3) => {
                if s3.bucket.trim().is_empty() {
                    return Err(invalid(format!("{field}.bucket"), "must not be empty"));
                }
                if !s3.columns.is_empty() && s3.format != super::S3Format::Parquet {
                    return Err(invalid(
                        format!("{field}.columns"),
                        "typed columns need format = \"parquet\"",
                    ));
                }
                for (index, column) in s3.columns.iter().enumerate() {
                    ColumnType::parse(&column.column_type).map_err(|message| {
                        invalid(format!("{field}.columns[{index}].type"), message)
                    })?;
                }
                for (name, url) in [
                    ("endpoint_url", &s3.endpoint_url),
                    ("sqs_endpoint_url", &s3.sqs_endpoint_url),
                    ("sqs_queue_url", &s3.sqs_queue_url),
                ] {
                    if let Some(url) = url {
                        if !(url.starts_with("http://") || url.starts_with("https://")) {
                            return Err(invalid(
                                format!("{field}.{name}"),
                                format!("{url:?} must start with http:// or https://"),
                            ));
                        }
                    }
                }
            }
            SinkConfig::Jsonl(jsonl) => {
                if jsonl.dir.as_os_str().is_empty() {
                    return Err(invalid(format!("{field}.dir"), "must not be empty"));
                }
                if jsonl.rotate_bytes == Some(0) {
                    return Err(invalid(
                        format!("{field}.rotate_bytes"),
                        "must be above zero",
                    ));
                }
            }
        }
    }
    Ok(())
}

fn validate_batch(batch: &BatchConfig, field: &str) -> Result<(), Invalid> {
    if batch.max_records == 0 {
        return Err(invalid(
            format!("{field}.max_records"),
            "must be above zero",
        ));
    }
    if batch.max_bytes == 0 {
        return Err(invalid(format!("{field}.max_bytes"), "must be above zero"));
    }
    if batch.max_retry_backoff.is_zero() {
        return Err(invalid(
            format!("{field}.max_retry_backoff"),
            "must be above zero",
        ));
    }
    Ok(())
}

fn validate_clickhouse(config: &ClickHouseSinkConfig, field: &str) -> Result<(), Invalid> {
    if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
        return Err(invalid(
            format!("{field}.url"),
            format!("{:?} must start with http:// or https://", config.url),
        ));
    }
    let identifier = |text: &str| {
        !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !identifier(&config.database) {
        return Err(invalid(
            format!("{field}.database"),
            "must be letters, digits and underscores",
        ));
    }
    if !config
        .table_prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(invalid(
            format!("{field}.table_prefix"),
            "must be letters, digits and underscores",
        ));
    }
    if config.max_concurrency == 0 {
        return Err(invalid(
            format!("{field}.max_concurrency"),
            "must be above zero",
        ));
    }
    let mut names = HashSet::new();
    for (index, column) in config.columns.iter().enumerate() {
        let column_field = format!("{field}.columns[{index}]");
        if !identifier(&column.name) || column.name.starts_with('_') {
            return Err(invalid(
                format!("{column_field}.name"),
                format!(
                    "{:?} must be letters, digits and underscores, not starting with `_` (reserved for the sink's columns)",
                    column.name
                ),
            ));
        }
        if !names.insert((column.table.clone(), column.name.clone())) {
            return Err(invalid(
                format!("{column_field}.name"),
                format!("column {:?} is mapped twice", column.name),
            ));
        }
        ColumnType::parse(&column.column_type)
            .map_err(|message| invalid(format!("{column_field}.type"), message))?;
    }
    Ok(())
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
    if let Some(enrich) = &config.enrich {
        if DimensionFormat::from_path(&enrich.path).is_none() {
            return Err(invalid(
                "enrich.path",
                format!("{:?} must end in .parquet, .csv or .jsonl", enrich.path),
            ));
        }
        if enrich.columns.is_empty() {
            return Err(invalid("enrich.columns", "name at least one column to add"));
        }
    }
    validate_sinks(&config.sinks)
}
