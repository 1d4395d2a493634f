//! The command line's errors for bad input, `validate` and `checkpoints`.

use crate::common;

use common::engine::{command, run_until_caught_up, write_config};

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The one `error:` line of a failed run.
fn error_line(output: &std::process::Output) -> String {
    assert!(
        !output.status.success(),
        "expected a failure, got {}",
        output.status
    );
    let text = stderr_of(output);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "expected one error line in:\n{text}");
    errors[0].to_owned()
}

fn sqlite_sink(dir: &std::path::Path) -> String {
    common::engine::sqlite_sink(&dir.join("replica.db"))
}

#[test]
fn malformed_config_names_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &["t1"],
        "batch_size = 5000",
        &sqlite_sink(dir.path()),
    );
    for verb in ["validate", "run"] {
        let output = command(&[verb, "--config", &config.display().to_string()])
            .output()
            .expect("run");
        let line = error_line(&output);
        assert!(
            line.contains("pipeline.toml: source.batch_size: 5000 is outside 1..=1000"),
            "{line}"
        );
    }
    std::fs::write(
        &config,
        "state_dir = \"x\"\n[[tables]]\nname = \"t\"\nstart = \"latest\"\n",
    )
    .expect("write");
    let line = error_line(
        &command(&["validate", "--config", &config.display().to_string()])
            .output()
            .expect("run"),
    );
    assert!(
        line.contains("tables[0].start: unknown field `start`"),
        "{line}"
    );
    let line = error_line(
        &command(&["validate", "--config", "/nonexistent/p.toml"])
            .output()
            .expect("run"),
    );
    assert!(line.contains("/nonexistent/p.toml: cannot read"), "{line}");
}

#[test]
fn valid_config_validates_without_io() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &["a_table", "b_table"],
        "",
        &sqlite_sink(dir.path()),
    );
    let output = command(&["validate", "--config", &config.display().to_string()])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ok (2 table(s): a_table, b_table; 1 sink(s): sqlite)"),
        "{stdout}"
    );
    assert!(
        !dir.path().join("state").exists(),
        "validate must not touch the state dir"
    );
}

#[test]
fn unknown_table_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &["no_such_table_here"],
        "",
        &sqlite_sink(dir.path()),
    );
    let output = command(&["run", "--config", &config.display().to_string()])
        .output()
        .expect("run");
    let line = error_line(&output);
    assert!(line.contains("table no_such_table_here"), "{line}");
    assert!(line.contains("not found"), "{line}");
    assert!(line.contains(&common::endpoint()), "{line}");
}

#[test]
fn wrong_endpoint_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &["t1"], "", &sqlite_sink(dir.path()));
    let text = std::fs::read_to_string(&config)
        .expect("read")
        .replace(&common::endpoint(), "http://127.0.0.1:9");
    std::fs::write(&config, text).expect("write");
    let output = command(&["run", "--config", &config.display().to_string()])
        .output()
        .expect("run");
    let line = error_line(&output);
    assert!(line.contains("http://127.0.0.1:9"), "{line}");
    assert!(line.to_lowercase().contains("connection refused"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn table_without_a_stream_is_explained() {
    let client = common::client().await;
    let table = common::unique_table("nostream");
    client
        .create_table()
        .table_name(&table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .expect("definition"),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("create table");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &[&table], "", &sqlite_sink(dir.path()));
    let output = command(&["run", "--config", &config.display().to_string()])
        .output()
        .expect("run");
    let line = error_line(&output);
    assert!(
        line.contains(&format!("table {table} has no stream")),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_show_and_reset() {
    let client = common::client().await;
    let table = common::unique_table("ckpt");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 10, 30, 5, 1).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &[&table], "", &sqlite_sink(dir.path()));
    let config_arg = config.display().to_string();

    let line = error_line(
        &command(&["checkpoints", "show", "--config", &config_arg])
            .output()
            .expect("run"),
    );
    assert!(line.contains("no checkpoint store"), "{line}");

    tokio::task::spawn_blocking({
        let config = config.clone();
        move || run_until_caught_up(&config)
    })
    .await
    .expect("run");
    let output = command(&["checkpoints", "show", "--config", &config_arg, "--json"])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["table"], table.as_str());
    assert!(rows[0]["sequence"].as_str().is_some_and(|s| s.len() >= 21));

    let output = command(&[
        "checkpoints",
        "reset",
        "--config",
        &config_arg,
        "--table",
        &table,
    ])
    .output()
    .expect("run");
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(String::from_utf8_lossy(&output.stdout)
        .contains(&format!("deleted 1 checkpoint(s) of table {table}")));
    let output = command(&["checkpoints", "show", "--config", &config_arg])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&output.stdout).contains("no checkpoints"));
}
