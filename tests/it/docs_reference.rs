//! The configuration reference cannot drift from the code: the JSON
//! Schemas and Markdown reference pages under docs/src/reference/ are
//! golden files of `dynamo-cdc config-schema`, derived from the config
//! types. `DYNAMO_CDC_UPDATE_GOLDEN=1` rewrites them after a change of an
//! option; the diff then shows in review.

use std::path::PathBuf;

use dynamo_cdc::config::{json_schema_text, reference_markdown, ConfigKind};

use crate::common;

fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/src/reference")
}

/// Compares `generated` with the golden file `name`, or rewrites it when
/// `DYNAMO_CDC_UPDATE_GOLDEN` is set.
fn check_golden(name: &str, generated: &str) {
    let path = reference_dir().join(name);
    if std::env::var_os("DYNAMO_CDC_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, generated).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let stored =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if stored != generated {
        let line = stored
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| stored.lines().count().min(generated.lines().count()));
        panic!(
            "{} is out of date (first difference at line {}): the config types changed. \
             Regenerate it with `DYNAMO_CDC_UPDATE_GOLDEN=1 cargo nextest run --test it docs_reference` \
             and review the diff",
            path.display(),
            line + 1
        );
    }
}

#[test]
fn the_json_schemas_in_the_book_are_the_config_types() {
    for kind in ConfigKind::ALL {
        check_golden(
            &format!("{}.schema.json", kind.name()),
            &json_schema_text(kind),
        );
    }
}

#[test]
fn the_reference_pages_are_generated_from_the_schema() {
    for kind in ConfigKind::ALL {
        check_golden(&format!("{}.md", kind.name()), &reference_markdown(kind));
    }
}

#[test]
fn config_schema_prints_the_golden_schema_and_reference() {
    for kind in ConfigKind::ALL {
        for (flags, file) in [
            (vec![], format!("{}.schema.json", kind.name())),
            (vec!["--markdown"], format!("{}.md", kind.name())),
        ] {
            let mut args = vec!["config-schema", "--kind", kind.name()];
            args.extend(flags);
            let output = common::engine::command(&args)
                .output()
                .expect("run config-schema");
            assert!(
                output.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let golden = std::fs::read(reference_dir().join(&file)).expect("golden file");
            assert!(
                output.stdout == golden,
                "{args:?} differs from docs/src/reference/{file}"
            );
        }
    }
}

#[test]
fn the_schema_has_every_option_with_its_type_default_and_description() {
    let schema: serde_json::Value =
        serde_json::from_str(&json_schema_text(ConfigKind::Pipeline)).expect("schema JSON");
    assert_eq!(
        schema["additionalProperties"], false,
        "the top level refuses unknown keys"
    );
    let source = &schema["definitions"]["SourceSettings"];
    assert_eq!(source["additionalProperties"], false);
    assert_eq!(source["properties"]["batch_size"]["default"], 1000);
    assert_eq!(source["properties"]["idle_poll_min"]["default"], "250ms");
    let table = &schema["definitions"]["TableConfig"]["properties"];
    assert_eq!(table["start_position"]["default"], "trim_horizon");
    assert!(table["name"]["description"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
    let sinks = schema["definitions"]["SinkEntry"]["oneOf"]
        .as_array()
        .expect("sink kinds");
    let kinds: Vec<&str> = sinks
        .iter()
        .filter_map(|s| s["properties"]["type"]["const"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "sqlite",
            "jsonl",
            "clickhouse",
            "s3",
            "postgres",
            "elasticsearch",
            "kafka"
        ]
    );
    for sink in sinks {
        assert_eq!(
            sink["additionalProperties"], false,
            "{}",
            sink["properties"]["type"]
        );
        for routing in ["tables", "filters", "transforms", "batch", "name"] {
            assert!(
                sink["properties"].get(routing).is_some(),
                "{} lacks {routing}",
                sink["properties"]["type"]
            );
        }
    }
}
