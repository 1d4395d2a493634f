//! DDL and the versioned multi-row upsert for one target table.

use std::sync::Arc;

use super::typed::{self, PgColumn};
use crate::model::{KeyKind, TableSchema};

/// Columns of a target table besides the keys, in order.
pub const META_COLUMNS: [&str; 5] = [
    "item",
    "item_dynamodb",
    "_version",
    "_deleted",
    "_updated_at",
];

/// Where one source table's changes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTable {
    /// Source table.
    pub source: Arc<str>,
    /// Schema.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// Key columns: name and SQL type (S → text, N → numeric, B → bytea).
    pub keys: Vec<(String, KeyKind)>,
    /// Inferred typed columns (`columns = "auto"`), after the sink's own.
    pub columns: Vec<PgColumn>,
}

/// Double-quotes an identifier.
pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sql_type(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::S => "text",
        KeyKind::N => "numeric",
        KeyKind::B => "bytea",
    }
}

impl PgTable {
    /// The target of `schema` under a sink's settings.
    pub fn new(table: &TableSchema, schema: &str, prefix: &str) -> Result<Self, String> {
        if let Some(key) = table
            .keys
            .iter()
            .find(|k| META_COLUMNS.contains(&k.name.as_str()))
        {
            return Err(format!(
                "key attribute {:?} of {} collides with a column the sink adds",
                key.name, table.name
            ));
        }
        let name: String = table
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        Ok(Self {
            source: Arc::clone(&table.name),
            schema: schema.to_owned(),
            name: format!("{prefix}{name}"),
            keys: table
                .keys
                .iter()
                .map(|k| (k.name.clone(), k.kind))
                .collect(),
            columns: Vec::new(),
        })
    }

    /// `"schema"."table"`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote(&self.schema), quote(&self.name))
    }

    /// The live view's name (`<table>_live`).
    pub fn live_view(&self) -> String {
        format!(
            "{}.{}",
            quote(&self.schema),
            quote(&format!("{}_live", self.name))
        )
    }
}

/// Schema, table and live view.
pub fn create_statements(table: &PgTable) -> String {
    let keys: Vec<String> = table.keys.iter().map(|(n, _)| quote(n)).collect();
    let key_columns: Vec<String> = table
        .keys
        .iter()
        .map(|(n, k)| format!("{} {} NOT NULL", quote(n), sql_type(*k)))
        .collect();
    format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {table} (
    {key_columns},
    item jsonb,
    item_dynamodb jsonb,
    _version numeric(40, 0) NOT NULL,
    _deleted boolean NOT NULL,
    _updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY ({keys})
);
CREATE OR REPLACE VIEW {view} AS
    SELECT {keys}, item, item_dynamodb, _version, _updated_at FROM {table} WHERE NOT _deleted;",
        schema = quote(&table.schema),
        table = table.qualified(),
        key_columns = key_columns.join(",\n    "),
        keys = keys.join(", "),
        view = table.live_view(),
    )
}

/// A text value (`$n` or a text column) cast to the key column's type.
pub(super) fn cast_key(text: &str, kind: KeyKind) -> String {
    match kind {
        KeyKind::S => text.to_owned(),
        KeyKind::N => format!("{text}::numeric"),
        KeyKind::B => format!("decode({text}, 'base64')"),
    }
}

/// `INSERT INTO … AS t (columns)` + `rows` (VALUES or SELECT) + the
/// versioned rule: a row changes only for an equal or newer version.
pub(super) fn versioned_insert(table: &PgTable, rows: &str) -> String {
    let keys: Vec<String> = table.keys.iter().map(|(n, _)| quote(n)).collect();
    format!(
        "INSERT INTO {table} AS t ({keys}, item, item_dynamodb, _version, _deleted, _updated_at{typed})
{rows}
ON CONFLICT ({keys}) DO UPDATE SET
    item = EXCLUDED.item,
    item_dynamodb = EXCLUDED.item_dynamodb,
    _version = EXCLUDED._version,
    _deleted = EXCLUDED._deleted,
    _updated_at = EXCLUDED._updated_at{assignments}
WHERE t._version <= EXCLUDED._version",
        table = table.qualified(),
        keys = keys.join(", "),
        typed = typed::names(&table.columns),
        assignments = typed::assignments(&table.columns),
    )
}

/// A multi-row versioned upsert of `rows` rows. Every parameter is text,
/// cast in SQL, so numbers and versions never pass through a float. Each
/// row binds the keys, then item, item_dynamodb, _version and _deleted,
/// then the typed columns.
pub fn upsert_statement(table: &PgTable, rows: usize) -> String {
    let per_row = table.keys.len() + 4 + table.columns.len();
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let p = |i: usize| row * per_row + i + 1;
            let mut cells: Vec<String> = table
                .keys
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| cast_key(&format!("${}", p(i)), *kind))
                .collect();
            let k = table.keys.len();
            cells.push(format!("${}::jsonb", p(k)));
            cells.push(format!("${}::jsonb", p(k + 1)));
            cells.push(format!("${}::numeric", p(k + 2)));
            cells.push(format!("${}::boolean", p(k + 3)));
            cells.push("now()".into());
            for (i, column) in table.columns.iter().enumerate() {
                cells.push(typed::cast(column.kind, &format!("${}", p(k + 4 + i))));
            }
            format!("({})", cells.join(", "))
        })
        .collect();
    versioned_insert(table, &format!("VALUES {}", values.join(",\n       ")))
}

/// Ends a snapshot: live rows below its version (`$1`, text) were not in
/// it, so their items are gone; they become tombstones at that version.
pub fn sweep_statement(table: &PgTable) -> String {
    format!(
        "UPDATE {} SET _deleted = true, item = NULL, item_dynamodb = NULL, _version = $1::numeric, _updated_at = now() \
         WHERE NOT _deleted AND _version < $1::numeric",
        table.qualified()
    )
}

/// The sink's own checkpoints, written in each batch's transaction.
pub fn checkpoint_table(schema: &str) -> String {
    format!("{}.dynamo_cdc_checkpoints", quote(schema))
}

/// DDL of the checkpoint table. Positions are up to 129 digits (Kinesis);
/// a table made by an earlier version with `numeric(40, 0)` is widened in
/// place (no rewrite: only the precision grows).
pub fn create_checkpoint_table(schema: &str) -> String {
    let schema_lit = format!("'{}'", schema.replace('\'', "''"));
    format!(
        "CREATE SCHEMA IF NOT EXISTS {schema_q};
CREATE TABLE IF NOT EXISTS {table} (
    stream_arn text NOT NULL,
    shard_id text NOT NULL,
    sequence text NOT NULL,
    sequence_number numeric(129, 0) NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_arn, shard_id)
);
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = {schema_lit} AND table_name = 'dynamo_cdc_checkpoints'
                 AND column_name = 'sequence_number' AND numeric_precision < 129) THEN
        ALTER TABLE {table} ALTER COLUMN sequence_number TYPE numeric(129, 0);
    END IF;
END $$;",
        schema_q = quote(schema),
        table = checkpoint_table(schema),
    )
}

/// Moves one shard's checkpoint forward (never back); parameters: stream, shard, sequence text.
pub fn checkpoint_upsert(schema: &str) -> String {
    format!(
        "INSERT INTO {table} AS c (stream_arn, shard_id, sequence, sequence_number, updated_at)
VALUES ($1, $2, $3, $3::numeric, now())
ON CONFLICT (stream_arn, shard_id) DO UPDATE SET
    sequence = EXCLUDED.sequence,
    sequence_number = EXCLUDED.sequence_number,
    updated_at = EXCLUDED.updated_at
WHERE c.sequence_number < EXCLUDED.sequence_number",
        table = checkpoint_table(schema)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> PgTable {
        let schema = TableSchema::new("My-Orders", &[("pk", KeyKind::S), ("sk", KeyKind::N)]);
        PgTable::new(&schema, "cdc", "ddb_").unwrap()
    }

    #[test]
    fn ddl_has_typed_keys_versions_and_a_live_view() {
        let ddl = create_statements(&table());
        assert!(
            ddl.contains("CREATE TABLE IF NOT EXISTS \"cdc\".\"ddb_my_orders\""),
            "{ddl}"
        );
        assert!(ddl.contains("\"sk\" numeric NOT NULL"), "{ddl}");
        assert!(ddl.contains("_version numeric(40, 0) NOT NULL"), "{ddl}");
        assert!(ddl.contains("WHERE NOT _deleted"), "{ddl}");
    }

    #[test]
    fn upsert_never_regresses() {
        let sql = upsert_statement(&table(), 2);
        assert!(
            sql.contains(
                "($1, $2::numeric, $3::jsonb, $4::jsonb, $5::numeric, $6::boolean, now())"
            ),
            "{sql}"
        );
        assert!(sql.contains("($7, $8::numeric, $9::jsonb"), "{sql}");
        assert!(
            sql.ends_with("WHERE t._version <= EXCLUDED._version"),
            "{sql}"
        );
    }
}
