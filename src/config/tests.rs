//! Unit tests of configuration parsing and its error messages.

use std::path::Path;
use std::time::Duration;

use super::*;
#[cfg(feature = "clickhouse")]
use crate::sink::clickhouse::ClickHouseMode;
#[cfg(feature = "postgres")]
use crate::sink::postgres::SqlDialect;
use crate::sink::{BatchConfig, SinkConfig};
use crate::transform::{CastTarget, TransformConfig};

const GOOD: &str = r#"
state_dir = "${STATE:-/tmp/state}"

[aws]
region = "us-east-1"
endpoint_url = "http://127.0.0.1:${PORT}"

[source]
idle_poll_max = "5s"

[[tables]]
name = "orders"

[[tables]]
name = "customers"
start_position = "latest"
on_trimmed = "skip"

[[sinks]]
type = "sqlite"
path = "/tmp/replica.db"

[[sinks]]
type = "jsonl"
dir = "/tmp/changes"
gzip = true
rotate_bytes = 1000
[sinks.batch]
max_age = "1s"
"#;

fn env(name: &str) -> Option<String> {
    (name == "PORT").then(|| "8000".to_owned())
}

fn parse(text: &str) -> Result<PipelineConfig, ConfigError> {
    parse_str(text, Path::new("pipeline.toml"), env)
}

fn error_of(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn parses_with_defaults_and_interpolation() {
    let config = parse(GOOD).unwrap();
    assert_eq!(config.state_dir, Path::new("/tmp/state"));
    assert_eq!(
        config.aws.endpoint_url.as_deref(),
        Some("http://127.0.0.1:8000")
    );
    assert_eq!(config.source.batch_size, 1000);
    assert_eq!(config.source.idle_poll_min, Duration::from_millis(250));
    assert_eq!(config.source.idle_poll_max, Duration::from_secs(5));
    assert_eq!(config.tables[0].start_position, StartPosition::TrimHorizon);
    assert_eq!(config.tables[0].on_trimmed, TrimPolicy::Halt);
    assert_eq!(config.tables[1].start_position, StartPosition::Latest);
    assert_eq!(config.tables[1].on_trimmed, TrimPolicy::Skip);
    let SinkConfig::Jsonl(jsonl) = &config.sinks[1].sink else {
        panic!("second sink is jsonl")
    };
    assert!(jsonl.gzip);
    assert_eq!(jsonl.batch.max_age, Duration::from_secs(1));
    assert_eq!(jsonl.batch.max_records, BatchConfig::default().max_records);
}

#[test]
fn unknown_field_is_named() {
    let text = GOOD.replace("on_trimmed = \"skip\"", "on_trim = \"skip\"");
    let err = error_of(&text);
    assert!(
        err.starts_with("pipeline.toml: tables[1].on_trim: unknown field `on_trim`"),
        "{err}"
    );
}

#[test]
fn unknown_field_inside_a_sink_is_named() {
    let text = GOOD.replace("gzip = true", "gzipped = true");
    let err = error_of(&text);
    assert!(err.contains("sinks[1]"), "{err}");
    assert!(err.contains("unknown field `gzipped`"), "{err}");
}

#[test]
fn bad_enum_value_is_named() {
    let text = GOOD.replace("\"latest\"", "\"earliest\"");
    let err = error_of(&text);
    assert!(err.contains("tables[1].start_position"), "{err}");
    assert!(err.contains("earliest"), "{err}");
}

#[test]
fn unknown_sink_type_is_named() {
    let text = GOOD.replace("type = \"sqlite\"", "type = \"oracle\"");
    let err = error_of(&text);
    assert!(err.contains("sinks[0]"), "{err}");
    assert!(err.contains("oracle"), "{err}");
}

#[test]
fn missing_env_var_is_named_with_its_field() {
    let text = GOOD.replace("${PORT}", "${DDB_PORT}");
    assert_eq!(
        error_of(&text),
        "pipeline.toml: aws.endpoint_url: environment variable DDB_PORT is not set"
    );
}

#[test]
fn syntax_error_gives_the_line() {
    let err = error_of("state_dir = \"x\"\n[[tables]\nname = 1\n");
    assert!(err.starts_with("pipeline.toml: line 2:"), "{err}");
}

#[test]
fn missing_required_field_is_named() {
    let err = error_of("state_dir = \"x\"\n[[sinks]]\ntype = \"sqlite\"\npath = \"a\"\n");
    assert!(err.contains("missing field `tables`"), "{err}");
}

#[test]
fn ranges_are_checked() {
    let text = GOOD.replace("idle_poll_max = \"5s\"", "batch_size = 5000");
    assert_eq!(
        error_of(&text),
        "pipeline.toml: source.batch_size: 5000 is outside 1..=1000 (the GetRecords limit)"
    );
    let text = GOOD.replace("idle_poll_max = \"5s\"", "idle_poll_max = \"banana\"");
    assert!(error_of(&text).contains("source.idle_poll_max"));
}

#[test]
fn duplicates_are_rejected() {
    let text = GOOD.replace("name = \"customers\"", "name = \"orders\"");
    assert_eq!(
        error_of(&text),
        "pipeline.toml: tables[1].name: table \"orders\" is listed twice"
    );
}

#[test]
fn stream_arn_format_is_checked() {
    let text = GOOD.replace(
        "name = \"orders\"",
        "name = \"orders\"\nstream_arn = \"orders-stream\"",
    );
    assert!(error_of(&text).contains("tables[0].stream_arn"));
}

#[test]
fn clickhouse_sink_parses_and_hides_its_password() {
    let text = GOOD.replace(
        "[[sinks]]\ntype = \"sqlite\"",
        "[[sinks]]\ntype = \"clickhouse\"\nurl = \"https://ch.example:8443\"\npassword = \"s3cr3t-pw\"\n\
         mode = \"changelog\"\n[[sinks.columns]]\nname = \"amount\"\ntype = \"Decimal(18, 2)\"\n\n[[sinks]]\ntype = \"sqlite\"",
    );
    let config = parse(&text).unwrap();
    let SinkConfig::Clickhouse(ch) = &config.sinks[0].sink else {
        panic!("first sink is clickhouse")
    };
    assert_eq!(ch.mode, ClickHouseMode::Changelog);
    assert_eq!(ch.database, "default");
    assert_eq!(ch.password.as_ref().map(Secret::expose), Some("s3cr3t-pw"));
    assert!(
        !format!("{config:?}").contains("s3cr3t-pw"),
        "password leaked into Debug output"
    );
    let bad = text.replace("Decimal(18, 2)", "Decimal(99, 2)");
    assert!(
        error_of(&bad).contains("sinks[0].columns[0].type"),
        "{}",
        error_of(&bad)
    );
    let bad = text.replace("name = \"amount\"", "name = \"_amount\"");
    assert!(error_of(&bad).contains("reserved"), "{}", error_of(&bad));
}

const LOADER: &str = r#"
state_dir = "/tmp/loader"
[queue]
url = "http://127.0.0.1:5005/123456789012/landing"
[[tables]]
name = "orders"
keys = [{ name = "pk", type = "S" }]
[[transforms]]
type = "cast"
attribute = "amount"
to = "number"
[enrich]
path = "dims.parquet"
key = "id"
field = "customer"
columns = ["name"]
[[sinks]]
type = "sqlite"
path = "/tmp/r.db"
"#;

fn loader_error(text: &str) -> String {
    parse_loader_str(text, Path::new("loader.toml"), env)
        .unwrap_err()
        .to_string()
}

#[test]
fn loader_config_parses_and_names_bad_fields() {
    let config = parse_loader_str(LOADER, Path::new("loader.toml"), env).unwrap();
    assert_eq!(config.queue.wait_time, Duration::from_secs(20));
    assert_eq!(config.queue.dead_letter_prefix, "dead-letters/");
    assert!(matches!(
        config.transforms[0],
        TransformConfig::Cast {
            to: CastTarget::Number,
            ..
        }
    ));
    assert_eq!(
        loader_error(&LOADER.replace("url = \"http", "wait_time = \"30s\"\nurl = \"http")),
        "loader.toml: queue.wait_time: SQS long polls last at most 20s"
    );
    assert!(
        loader_error(&LOADER.replace("type = \"S\"", "type = \"X\""))
            .contains("tables[0].keys[0].type")
    );
    assert!(loader_error(&LOADER.replace("dims.parquet", "dims.xlsx")).contains("enrich.path"));
    assert!(
        loader_error(&LOADER.replace("to = \"number\"", "to = \"money\""))
            .contains("transforms[0]")
    );
    assert!(
        loader_error(&LOADER.replace("attribute = \"amount\"", "attr = \"amount\""))
            .contains("transforms[0]")
    );
}

#[test]
fn postgres_sink_dialects() {
    let text = GOOD.replace(
        "[[sinks]]\ntype = \"sqlite\"",
        "[[sinks]]\ntype = \"postgres\"\nurl = \"host=db user=cdc\"\ndialect = \"cratedb\"\n\n[[sinks]]\ntype = \"sqlite\"",
    );
    let config = parse(&text).unwrap();
    let SinkConfig::Postgres(pg) = &config.sinks[0].sink else {
        panic!("first sink is postgres")
    };
    assert_eq!(pg.dialect, SqlDialect::Cratedb);
    assert!(
        !pg.exactly_once(),
        "CrateDB has no transactional checkpoint"
    );
    let bad = text.replace(
        "dialect = \"cratedb\"",
        "dialect = \"cratedb\"\nexactly_once = true",
    );
    assert!(
        error_of(&bad).contains("sinks[0].exactly_once"),
        "{}",
        error_of(&bad)
    );
    let postgres = text.replace("dialect = \"cratedb\"\n", "");
    let config = parse(&postgres).unwrap();
    let SinkConfig::Postgres(pg) = &config.sinks[0].sink else {
        panic!("first sink is postgres")
    };
    assert!(pg.exactly_once(), "exactly-once is PostgreSQL's default");
}

#[test]
fn a_sink_type_not_in_this_build_names_the_feature_to_build_with() {
    let problem = crate::sink::registry::not_built("kafka", "kafka");
    let (field, message) = super::validate::sink_problem("sinks[1]", problem);
    let err = ConfigError::Field {
        file: "pipeline.toml".into(),
        field,
        message,
    };
    assert_eq!(
        err.to_string(),
        r#"pipeline.toml: sinks[1]: type "kafka" is not in this build (built without the "kafka" feature; rebuild with --features kafka)"#
    );
}

#[test]
fn a_sink_problem_is_placed_under_its_entry() {
    let problem = crate::sink::InvalidField::new("batch.max_records", "must be at least 1");
    assert_eq!(
        super::validate::sink_problem("sinks[0]", problem),
        (
            "sinks[0].batch.max_records".to_owned(),
            "must be at least 1".to_owned()
        )
    );
}
