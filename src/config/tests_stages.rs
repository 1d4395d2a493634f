//! Unit tests of the transform settings: filters, transforms and routing
//! in `[[tables]]`, `[[sinks]]` and the loader, and their error messages.

use std::path::Path;

use super::*;

const ROUTED: &str = r#"
state_dir = "/tmp/state"

[[tables]]
name = "orders"
filters = ['{"eventName": ["INSERT", "MODIFY"]}', { dynamodb = { NewImage = { status = { S = ["paid"] } } } }]
transforms = [{ type = "drop_old_image" }, { type = "set", attribute = "label", template = "{id}:{status}" }]

[[tables]]
name = "customers"

[[sinks]]
type = "sqlite"
path = "/tmp/replica.db"

[[sinks]]
type = "jsonl"
dir = "/tmp/changes"
tables = ["orders"]
transforms = [{ type = "exclude", attributes = ["secret"] }, { type = "include", attributes = ["label"] }]
"#;

fn error_of(text: &str) -> String {
    parse_str(text, Path::new("pipeline.toml"), |_| None)
        .unwrap_err()
        .to_string()
}

#[test]
fn tables_and_sinks_carry_filters_transforms_and_routes() {
    let config = parse_str(ROUTED, Path::new("pipeline.toml"), |_| None).unwrap();
    assert_eq!(config.tables[0].filters.len(), 2);
    assert_eq!(config.tables[0].transforms.len(), 2);
    assert!(config.tables[1].filters.is_empty());
    assert_eq!(config.sinks[0].tables, None);
    assert_eq!(
        config.sinks[1].tables.as_deref(),
        Some(&["orders".to_owned()][..])
    );
    assert_eq!(config.sinks[1].name(), "jsonl");
    let route = config.sinks[1].route().unwrap();
    assert!(route.tables.unwrap().contains("orders"));
    assert!(!route.stage.is_empty());
    assert!(config.sinks[0].route().unwrap().stage.is_empty());
}

#[test]
fn a_bad_pattern_is_named_by_its_place() {
    let text = ROUTED.replace(r#"S = ["paid"]"#, r#"S = [{ prefx = "p" }]"#);
    let err = error_of(&text);
    assert!(
        err.starts_with("pipeline.toml: tables[0].filters[1]: dynamodb.NewImage.status.S[0]: "),
        "{err}"
    );
    assert!(err.contains("prefx"), "{err}");
    let text = ROUTED.replace(
        r#"'{"eventName": ["INSERT", "MODIFY"]}'"#,
        r#"'{"eventName": ["INSERT"'"#,
    );
    let err = error_of(&text);
    assert!(
        err.starts_with("pipeline.toml: tables[0].filters[0]: not valid JSON"),
        "{err}"
    );
}

#[test]
fn a_bad_transform_is_named_by_its_place() {
    let err = error_of(&ROUTED.replace("{id}:{status}", "{id:{status}"));
    assert!(
        err.starts_with("pipeline.toml: tables[0].transforms[1].template: "),
        "{err}"
    );
    let err = error_of(&ROUTED.replace(r#"attributes = ["label"]"#, "attributes = []"));
    assert!(
        err.starts_with("pipeline.toml: sinks[1].transforms[1].attributes: "),
        "{err}"
    );
    let err = error_of(&ROUTED.replace(r#"type = "drop_old_image""#, r#"type = "uppercase""#));
    assert!(
        err.contains("tables[0].transforms[0]") && err.contains("uppercase"),
        "{err}"
    );
}

#[test]
fn routes_name_configured_tables_and_reach_every_table() {
    let err = error_of(&ROUTED.replace(r#"tables = ["orders"]"#, r#"tables = ["order"]"#));
    assert!(
        err.starts_with(r#"pipeline.toml: sinks[1].tables[0]: "order" is not a configured table"#),
        "{err}"
    );
    let text = ROUTED.replace(
        "type = \"sqlite\"\npath = \"/tmp/replica.db\"",
        "type = \"sqlite\"\npath = \"/tmp/replica.db\"\ntables = [\"orders\"]",
    );
    let err = error_of(&text);
    assert!(
        err.starts_with(r#"pipeline.toml: tables[1]: no sink takes table "customers""#),
        "{err}"
    );
}

#[test]
fn an_unknown_field_in_a_routed_sink_is_still_named() {
    let err = error_of(&ROUTED.replace(
        "dir = \"/tmp/changes\"",
        "dir = \"/tmp/changes\"\ndirectory = \"x\"",
    ));
    assert!(
        err.contains("sinks[1]") && err.contains("unknown field `directory`"),
        "{err}"
    );
}

#[test]
fn the_loader_checks_its_stages() {
    let loader = r#"
state_dir = "/tmp/l"
transforms = [{ type = "set", attribute = "x", template = "}" }]
[queue]
url = "http://127.0.0.1:1/q"
[[tables]]
name = "orders"
keys = [{ name = "id", type = "S" }]
[[sinks]]
type = "sqlite"
path = "/tmp/l.db"
"#;
    let err = parse_loader_str(loader, Path::new("load.toml"), |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("load.toml: transforms[0].template: "),
        "{err}"
    );
    let loader = loader
        .replace(r#"template = "}""#, r#"template = "{x}""#)
        .replace("keys = [", "filters = ['{\"eventName\": []}']\nkeys = [");
    let err = parse_loader_str(&loader, Path::new("load.toml"), |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("load.toml: tables[0].filters[0]: eventName: "),
        "{err}"
    );
}
