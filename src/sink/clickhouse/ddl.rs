//! Target tables and their DDL for both layouts and both server generations.

use std::sync::Arc;

use super::column_type::ColumnType;
use super::server::Capabilities;
use super::ClickHouseMode;
use crate::model::{KeyAttribute, TableSchema};
use crate::schema::ColumnKind;
use crate::sink::columns::ColumnMapping;

/// One mapped column of a target table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedColumn {
    /// Column name.
    pub name: String,
    /// Source attribute.
    pub attribute: String,
    /// Column type.
    pub column_type: ColumnType,
    /// The kind of an inferred column (`columns = "auto"`): a value the
    /// kind does not hold is left out (NULL, or `[]` for an array) and
    /// stays in `_item`, rather than refusing the row.
    pub inferred: Option<ColumnKind>,
}

/// Where one source table's changes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetTable {
    /// Source table.
    pub source: Arc<str>,
    /// Database.
    pub database: String,
    /// Table name (`<prefix><source>`, non-identifier characters as `_`).
    pub name: String,
    /// Key attributes, partition key first.
    pub keys: Vec<KeyAttribute>,
    /// Mapped columns.
    pub columns: Vec<MappedColumn>,
    /// Layout.
    pub mode: ClickHouseMode,
    /// Its columns are inferred (`columns = "auto"`): every row is checked
    /// for attributes that need a column, even before there is one.
    pub inferred: bool,
}

/// Backquotes an identifier.
pub(super) fn quote(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

impl TargetTable {
    /// The target of `schema` under a sink's settings. Fails on a mapped
    /// type the configuration validation would have rejected.
    pub fn new(
        schema: &TableSchema,
        database: &str,
        prefix: &str,
        mode: ClickHouseMode,
        mappings: &[ColumnMapping],
    ) -> Result<Self, String> {
        let sanitized: String = schema
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut columns = Vec::new();
        for mapping in mappings
            .iter()
            .filter(|m| m.table.as_deref().is_none_or(|t| t == &*schema.name))
        {
            if schema.keys.iter().any(|k| k.name == mapping.name) {
                return Err(format!(
                    "mapped column {:?} has the name of a key column of {}",
                    mapping.name, schema.name
                ));
            }
            columns.push(MappedColumn {
                name: mapping.name.clone(),
                attribute: mapping.attribute().to_owned(),
                column_type: ColumnType::parse(&mapping.column_type)?,
                inferred: None,
            });
        }
        if let Some(key) = schema.keys.iter().find(|k| k.name.starts_with('_')) {
            return Err(format!(
                "key attribute {:?} of {} starts with `_`, which the sink reserves",
                key.name, schema.name
            ));
        }
        Ok(Self {
            source: Arc::clone(&schema.name),
            database: database.to_owned(),
            name: format!("{prefix}{sanitized}"),
            keys: schema.keys.clone(),
            columns,
            mode,
            inferred: false,
        })
    }

    /// The same target with `columns` as its inferred columns.
    pub fn with_inferred_columns(&self, columns: Vec<MappedColumn>) -> Self {
        Self {
            columns,
            inferred: true,
            ..self.clone()
        }
    }

    /// The names of the columns the sink itself adds besides the keys.
    pub fn meta_columns(&self) -> &'static [&'static str] {
        match self.mode {
            ClickHouseMode::State => &["_item", "_version", "_is_deleted", "_approx_time_ms"],
            ClickHouseMode::Changelog => &[
                "_op",
                "_new",
                "_old",
                "_version",
                "_sequence",
                "_shard",
                "_event_id",
                "_approx_time_ms",
                "_ttl_delete",
            ],
        }
    }

    /// `` `database`.`table` ``.
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote(&self.database), quote(&self.name))
    }

    /// The columns of a row as the sink writes it (DDL order), backquoted and
    /// comma-separated, for `INSERT INTO t (…)`.
    pub fn insert_columns(&self) -> String {
        let mut names: Vec<String> = self.keys.iter().map(|k| quote(&k.name)).collect();
        names.extend(self.meta_columns().iter().map(|name| quote(name)));
        names.extend(self.columns.iter().map(|c| quote(&c.name)));
        names.join(", ")
    }

    /// Every column the table must have, in DDL order, with its type.
    pub fn column_types(&self, caps: Capabilities) -> Vec<(String, String)> {
        let version = caps.version_type().to_owned();
        let mut out: Vec<(String, String)> = self
            .keys
            .iter()
            .map(|k| (k.name.clone(), "String".to_owned()))
            .collect();
        let meta: Vec<(&str, String)> = match self.mode {
            ClickHouseMode::State => vec![
                ("_item", "String".into()),
                ("_version", version),
                ("_is_deleted", "UInt8".into()),
                ("_approx_time_ms", "Int64".into()),
            ],
            ClickHouseMode::Changelog => vec![
                ("_op", "String".into()),
                ("_new", "String".into()),
                ("_old", "String".into()),
                ("_version", version),
                ("_sequence", "String".into()),
                ("_shard", "String".into()),
                ("_event_id", "String".into()),
                ("_approx_time_ms", "Int64".into()),
                ("_ttl_delete", "UInt8".into()),
            ],
        };
        out.extend(meta.into_iter().map(|(n, t)| (n.to_owned(), t)));
        for column in &self.columns {
            let mut ddl = column.column_type.ddl();
            if !caps.bool_type {
                ddl = ddl.replace("Bool", "UInt8");
            }
            out.push((column.name.clone(), ddl));
        }
        out
    }
}

/// `CREATE TABLE IF NOT EXISTS` for a target on a server with `caps`.
pub fn create_table_statement(table: &TargetTable, caps: Capabilities) -> String {
    let columns: Vec<String> = table
        .column_types(caps)
        .iter()
        .map(|(name, ty)| format!("    {} {ty}", quote(name)))
        .collect();
    let keys: Vec<String> = table.keys.iter().map(|k| quote(&k.name)).collect();
    let engine = match table.mode {
        ClickHouseMode::State if caps.is_deleted => {
            format!(
                "ReplacingMergeTree(`_version`, `_is_deleted`) ORDER BY ({})",
                keys.join(", ")
            )
        }
        ClickHouseMode::State => {
            format!(
                "ReplacingMergeTree(`_version`) ORDER BY ({})",
                keys.join(", ")
            )
        }
        ClickHouseMode::Changelog => {
            format!("MergeTree ORDER BY ({}, `_version`)", keys.join(", "))
        }
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n) ENGINE = {engine}",
        table.qualified(),
        columns.join(",\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KeyKind;
    use crate::sink::clickhouse::ServerVersion;

    fn target(mode: ClickHouseMode) -> TargetTable {
        let schema = TableSchema::new("my-orders", &[("pk", KeyKind::S), ("sk", KeyKind::N)]);
        let mapping = ColumnMapping {
            name: "paid".into(),
            attribute: None,
            column_type: "Bool".into(),
            table: None,
        };
        TargetTable::new(&schema, "cdc", "ddb_", mode, &[mapping]).unwrap()
    }

    #[test]
    fn state_ddl_follows_the_server() {
        let old = ServerVersion::parse("18.16.1").unwrap().capabilities();
        let new = ServerVersion::parse("26.9").unwrap().capabilities();
        let ddl = create_table_statement(&target(ClickHouseMode::State), old);
        assert!(
            ddl.starts_with("CREATE TABLE IF NOT EXISTS `cdc`.`ddb_my_orders`"),
            "{ddl}"
        );
        assert!(ddl.contains("`_version` UInt64"), "{ddl}");
        assert!(ddl.contains("`paid` UInt8"), "{ddl}");
        assert!(
            ddl.ends_with("ENGINE = ReplacingMergeTree(`_version`) ORDER BY (`pk`, `sk`)"),
            "{ddl}"
        );
        let ddl = create_table_statement(&target(ClickHouseMode::State), new);
        assert!(ddl.contains("`_version` UInt256"), "{ddl}");
        assert!(ddl.contains("`paid` Bool"), "{ddl}");
        assert!(
            ddl.ends_with("ReplacingMergeTree(`_version`, `_is_deleted`) ORDER BY (`pk`, `sk`)"),
            "{ddl}"
        );
    }

    #[test]
    fn changelog_ddl_is_append_only() {
        let caps = ServerVersion::parse("18.16.1").unwrap().capabilities();
        let ddl = create_table_statement(&target(ClickHouseMode::Changelog), caps);
        assert!(
            ddl.ends_with("ENGINE = MergeTree ORDER BY (`pk`, `sk`, `_version`)"),
            "{ddl}"
        );
        assert!(ddl.contains("`_ttl_delete` UInt8"), "{ddl}");
    }
}
