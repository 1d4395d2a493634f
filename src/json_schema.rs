//! JSON Schema pieces for configuration values whose TOML form differs
//! from their Rust type: humantime durations (`"250ms"`, `"1h 30m"`) and
//! lists that may be written as one string. The config types name these
//! with `#[schemars(with = …)]`; `dynamo-cdc config-schema` prints the result.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

/// A duration as the configuration writes it: a number with a unit
/// (`ns`, `us`, `ms`, `s`, `m`, `h`, `d`, …), several parts allowed (`"1m 30s"`).
pub struct HumanDuration;

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration: a number and a unit (ns, us, ms, s, m, h, d), several parts allowed, e.g. \"250ms\", \"10s\", \"1h 30m\".",
            "pattern": "^\\s*[0-9]+\\s*[a-zµ]+(\\s*[0-9]+\\s*[a-zµ]+)*\\s*$",
            "examples": ["250ms", "10s", "1h 30m"]
        })
    }
}

/// One name, or a list of names (`"id"` or `["region", "id"]`).
pub struct OneOrMany;

impl JsonSchema for OneOrMany {
    fn schema_name() -> Cow<'static, str> {
        "OneOrMany".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "One name, or a list of names.",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        })
    }
}
