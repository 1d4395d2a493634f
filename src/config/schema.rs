//! The JSON Schema of the configuration files, derived from the config
//! types (`schemars`), so that it cannot drift from what the parser
//! accepts: every option with its type, default and doc comment, and
//! `additionalProperties: false` wherever the parser refuses unknown keys.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use super::{LoaderConfig, PipelineConfig};

/// Which configuration file a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    /// A pipeline (`run`, `snapshot`, `validate`, …).
    Pipeline,
    /// A loader (`load`).
    Loader,
}

impl ConfigKind {
    /// Both kinds, pipeline first.
    pub const ALL: [ConfigKind; 2] = [ConfigKind::Pipeline, ConfigKind::Loader];

    /// `pipeline` or `loader`: the name of its schema and reference files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pipeline => "pipeline",
            Self::Loader => "loader",
        }
    }
}

/// The JSON Schema (draft 7, which editors' TOML plugins understand) of a
/// configuration file of `kind`.
pub fn json_schema(kind: ConfigKind) -> Value {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = match kind {
        ConfigKind::Pipeline => generator.into_root_schema_for::<PipelineConfig>(),
        ConfigKind::Loader => generator.into_root_schema_for::<LoaderConfig>(),
    };
    let mut value = schema.to_value();
    drop_null_defaults(&mut value);
    if let Some(root) = value.as_object_mut() {
        root.insert(
            "$id".into(),
            Value::String(format!("dynamo-cdc-{}.schema.json", kind.name())),
        );
        if let Some(Value::Object(defs)) = root.get_mut("definitions") {
            close_sink_entries(defs);
            accept_transform_aliases(defs);
        }
    }
    value
}

/// `"default": null` says nothing in TOML, which has no null: an unset
/// optional field is documented by its description.
fn drop_null_defaults(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            map.values_mut().for_each(drop_null_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_defaults),
        _ => {}
    }
}

/// A `[[sinks]]` entry is the routing fields plus the sink's own, chosen
/// by `type` (a flattened, tagged enum). Each sink's settings refuse
/// unknown keys, and so does the parser for the whole entry: each
/// variant gets the routing fields and `additionalProperties: false`.
/// A variant with no settings of its own (a sink this build lacks, which
/// the parser accepts with any settings) stays open.
fn close_sink_entries(defs: &mut Map<String, Value>) {
    let Some(Value::Object(entry)) = defs.get_mut("SinkEntry") else {
        return;
    };
    let routing = entry.get("properties").cloned().unwrap_or_default();
    let Some(Value::Array(variants)) = entry.get_mut("oneOf") else {
        return;
    };
    for variant in variants.iter_mut().filter_map(Value::as_object_mut) {
        let Some(Value::Object(properties)) = variant.get_mut("properties") else {
            continue;
        };
        if properties.len() <= 1 {
            continue;
        }
        if let Value::Object(routing) = &routing {
            for (key, schema) in routing {
                properties.insert(key.clone(), schema.clone());
            }
        }
        variant.insert("additionalProperties".into(), Value::Bool(false));
    }
}

/// `type = "exclude"` is an alias of the `drop` transform
/// (`#[serde(alias = "exclude")]` on [`super::TransformConfig`]).
fn accept_transform_aliases(defs: &mut Map<String, Value>) {
    let Some(Value::Array(variants)) = defs
        .get_mut("TransformConfig")
        .and_then(|transform| transform.get_mut("oneOf"))
    else {
        return;
    };
    for variant in variants {
        if let Some(tag) = variant.pointer_mut("/properties/type") {
            if tag.get("const") == Some(&Value::String("drop".into())) {
                *tag = serde_json::json!({ "type": "string", "enum": ["drop", "exclude"] });
            }
        }
    }
}

/// The schema as pretty-printed JSON with a final newline.
pub fn json_schema_text(kind: ConfigKind) -> String {
    let mut text = serde_json::to_string_pretty(&json_schema(kind)).unwrap_or_default();
    text.push('\n');
    text
}

/// The `definitions` of a schema, by name.
pub fn definitions(schema: &Value) -> Map<String, Value> {
    schema
        .get("definitions")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}
