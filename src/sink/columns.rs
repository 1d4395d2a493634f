//! Typed columns filled from item attributes (ClickHouse columns, Parquet columns).

use serde::Deserialize;

use super::clickhouse::ColumnType;
use super::registry::InvalidField;

/// One typed column filled from an item attribute.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnMapping {
    /// Column name in ClickHouse.
    pub name: String,
    /// Top-level attribute it comes from; defaults to `name`.
    pub attribute: Option<String>,
    /// ClickHouse type: String, Int64, UInt64, Float64, Decimal(P,S), Bool,
    /// UInt8, DateTime, Array(String), or Nullable(one of those).
    #[serde(rename = "type")]
    pub column_type: String,
    /// Only for this source table; for every table when unset.
    pub table: Option<String>,
}

impl ColumnMapping {
    /// The attribute the column is filled from.
    pub fn attribute(&self) -> &str {
        self.attribute.as_deref().unwrap_or(&self.name)
    }
}

/// Checks that every column's `type` is one the sinks can fill.
pub fn validate_column_types(columns: &[ColumnMapping]) -> Result<(), InvalidField> {
    for (index, column) in columns.iter().enumerate() {
        ColumnType::parse(&column.column_type)
            .map_err(|message| InvalidField::new(format!("columns[{index}].type"), message))?;
    }
    Ok(())
}

/// A sink's `columns` setting: a list of hand-mapped columns, or `"auto"`:
/// typed columns inferred from the items and evolved as they change.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ColumnsSetting {
    /// No typed columns (the default).
    #[default]
    None,
    /// The listed columns only.
    Mapped(Vec<ColumnMapping>),
    /// A column per top-level attribute, added and widened as items change.
    Auto,
}

impl ColumnsSetting {
    /// The hand-mapped columns (none when unset or `"auto"`).
    pub fn mapped(&self) -> &[ColumnMapping] {
        match self {
            Self::Mapped(columns) => columns,
            Self::None | Self::Auto => &[],
        }
    }

    /// True for `columns = "auto"`.
    pub fn is_auto(&self) -> bool {
        matches!(self, Self::Auto)
    }
}

impl schemars::JsonSchema for ColumnsSetting {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ColumnsSetting".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let columns = generator.subschema_for::<Vec<ColumnMapping>>();
        schemars::json_schema!({
            "description": "`\"auto\"` (a typed column per top-level attribute, added and widened as items change) or a list of columns (`{ name, type, attribute, table }`).",
            "anyOf": [{ "const": "auto" }, columns]
        })
    }
}

impl<'de> Deserialize<'de> for ColumnsSetting {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ColumnsVisitor)
    }
}

struct ColumnsVisitor;

impl<'de> serde::de::Visitor<'de> for ColumnsVisitor {
    type Value = ColumnsSetting;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"auto\" or a list of columns ({ name, type, attribute, table })")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ColumnsSetting, E> {
        match text {
            "auto" => Ok(ColumnsSetting::Auto),
            other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
        }
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<ColumnsSetting, A::Error> {
        let columns =
            Vec::<ColumnMapping>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Ok(ColumnsSetting::Mapped(columns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Entry {
        #[serde(default)]
        columns: ColumnsSetting,
    }

    #[test]
    fn columns_are_auto_a_list_or_unset() {
        let auto: Entry = toml::from_str("columns = \"auto\"").unwrap();
        assert!(auto.columns.is_auto());
        let list: Entry = toml::from_str("[[columns]]\nname = \"paid\"\ntype = \"Bool\"").unwrap();
        assert_eq!(list.columns.mapped()[0].name, "paid");
        let unset: Entry = toml::from_str("").unwrap();
        assert_eq!(unset.columns, ColumnsSetting::None);
        let wrong = toml::from_str::<Entry>("columns = \"automatic\"").unwrap_err();
        assert!(wrong.to_string().contains("\"auto\" or a list"), "{wrong}");
    }
}
