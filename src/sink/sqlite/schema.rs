//! Replica table DDL and statements for one source table.

use crate::model::{KeyKind, TableSchema};

/// Columns the sink adds next to the key columns.
pub const META_COLUMNS: [&str; 4] = ["_item", "_version", "_deleted", "_updated_ms"];

/// Quotes an SQLite identifier.
pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The name of the view that shows a table's live (not deleted) rows.
pub fn live_view_name(table: &str) -> String {
    format!("{table}_live")
}

fn column_type(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::S | KeyKind::N => "TEXT",
        KeyKind::B => "BLOB",
    }
}

/// `CREATE TABLE` and `CREATE VIEW` statements for a source table.
pub(super) fn create_statements(schema: &TableSchema) -> String {
    let table = quote(&schema.name);
    let keys: Vec<String> = schema.keys.iter().map(|k| quote(&k.name)).collect();
    let key_columns: Vec<String> = schema
        .keys
        .iter()
        .map(|k| format!("{} {} NOT NULL", quote(&k.name), column_type(k.kind)))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            {columns},
            _item TEXT,
            _version TEXT NOT NULL,
            _deleted INTEGER NOT NULL,
            _updated_ms INTEGER NOT NULL,
            PRIMARY KEY ({keys})
        ) WITHOUT ROWID;
        CREATE VIEW IF NOT EXISTS {view} AS
            SELECT {keys}, _item, _version, _updated_ms FROM {table} WHERE _deleted = 0;",
        columns = key_columns.join(",\n            "),
        keys = keys.join(", "),
        view = quote(&live_view_name(&schema.name)),
    )
}

/// The versioned upsert: the row changes only if the incoming version is newer.
pub(super) fn upsert_statement(schema: &TableSchema) -> String {
    let table = quote(&schema.name);
    let keys: Vec<String> = schema.keys.iter().map(|k| quote(&k.name)).collect();
    let placeholders: Vec<String> = (1..=schema.keys.len() + 4)
        .map(|i| format!("?{i}"))
        .collect();
    format!(
        "INSERT INTO {table} ({keys}, _item, _version, _deleted, _updated_ms)
         VALUES ({placeholders})
         ON CONFLICT ({keys}) DO UPDATE SET
            _item = excluded._item,
            _version = excluded._version,
            _deleted = excluded._deleted,
            _updated_ms = excluded._updated_ms
         WHERE excluded._version >= {table}._version",
        keys = keys.join(", "),
        placeholders = placeholders.join(", "),
    )
}

/// Ends a snapshot: live rows below its version (`?1`, padded) were not in
/// it, so their items are gone; they become tombstones at that version
/// (`?2`: now, milliseconds).
pub(super) fn sweep_statement(schema: &TableSchema) -> String {
    format!(
        "UPDATE {} SET _deleted = 1, _item = NULL, _version = ?1, _updated_ms = ?2 \
         WHERE _deleted = 0 AND _version < ?1",
        quote(&schema.name)
    )
}

/// Deletes tombstones older than a cut-off (`?1`, milliseconds).
pub(super) fn purge_statement(schema: &TableSchema) -> String {
    format!(
        "DELETE FROM {} WHERE _deleted = 1 AND _updated_ms < ?1",
        quote(&schema.name)
    )
}

/// The columns an existing replica table must have, in order.
pub(super) fn expected_columns(schema: &TableSchema) -> Vec<String> {
    schema
        .keys
        .iter()
        .map(|k| k.name.clone())
        .chain(META_COLUMNS.iter().map(|c| (*c).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_odd_names() {
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn upsert_is_versioned() {
        let schema = TableSchema::new("orders", &[("pk", KeyKind::S), ("sk", KeyKind::N)]);
        let sql = upsert_statement(&schema);
        assert!(sql.contains("VALUES (?1, ?2, ?3, ?4, ?5, ?6)"), "{sql}");
        assert!(
            sql.contains("WHERE excluded._version >= \"orders\"._version"),
            "{sql}"
        );
        assert_eq!(
            expected_columns(&schema),
            ["pk", "sk", "_item", "_version", "_deleted", "_updated_ms"]
        );
    }
}
