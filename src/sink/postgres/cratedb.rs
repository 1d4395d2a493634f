//! The `cratedb` dialect: CrateDB speaks the PostgreSQL wire protocol but has
//! no multi-statement transactions, no `numeric(40)` storage and no `WHERE`
//! on `ON CONFLICT DO UPDATE`. Versions are stored as 40-digit zero-padded
//! text (text order is numeric order) and every column's update is guarded
//! by a `CASE` on the version, so the upsert stays idempotent by version.

use super::sql::{quote, PgTable};
use crate::model::KeyKind;

/// `CREATE TABLE` for CrateDB: `item` as OBJECT(DYNAMIC) for queries, the
/// lossless DynamoDB JSON as text, N keys as their exact text.
pub fn create_statement(table: &PgTable) -> String {
    let keys: Vec<String> = table.keys.iter().map(|(n, _)| quote(n)).collect();
    let key_columns: Vec<String> = table
        .keys
        .iter()
        .map(|(n, kind)| {
            let ty = match kind {
                KeyKind::S | KeyKind::N => "TEXT",
                KeyKind::B => "TEXT", // base64
            };
            format!("{} {ty} NOT NULL", quote(n))
        })
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
    {key_columns},
    item OBJECT(DYNAMIC),
    item_dynamodb TEXT,
    _version TEXT NOT NULL,
    _deleted BOOLEAN NOT NULL,
    _updated_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY ({keys})
)",
        table = table.qualified(),
        key_columns = key_columns.join(",\n    "),
        keys = keys.join(", "),
    )
}

/// A multi-row upsert whose updates only take when the incoming version is
/// newer. Parameters per row: keys, item (JSON text), item_dynamodb,
/// _version (40-digit zero-padded), _deleted.
pub fn upsert_statement(table: &PgTable, rows: usize) -> String {
    let keys: Vec<String> = table.keys.iter().map(|(n, _)| quote(n)).collect();
    let per_row = table.keys.len() + 4;
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let p = |i: usize| row * per_row + i + 1;
            let mut cells: Vec<String> = (0..table.keys.len())
                .map(|i| format!("${}", p(i)))
                .collect();
            let k = table.keys.len();
            cells.push(format!("${}::OBJECT", p(k)));
            cells.push(format!("${}", p(k + 1)));
            cells.push(format!("${}", p(k + 2)));
            cells.push(format!("${}::BOOLEAN", p(k + 3)));
            cells.push("CURRENT_TIMESTAMP".into());
            format!("({})", cells.join(", "))
        })
        .collect();
    let guarded = |column: &str| {
        format!(
            "{column} = CASE WHEN {t}._version <= excluded._version THEN excluded.{column} ELSE {t}.{column} END",
            t = table.qualified()
        )
    };
    // Every CASE reads the row as it was before this update.
    let updates = [
        "item",
        "item_dynamodb",
        "_deleted",
        "_updated_at",
        "_version",
    ]
    .iter()
    .map(|c| guarded(c))
    .collect::<Vec<_>>()
    .join(",\n    ");
    format!(
        "INSERT INTO {table} ({keys}, item, item_dynamodb, _version, _deleted, _updated_at)
VALUES {values}
ON CONFLICT ({keys}) DO UPDATE SET
    {updates}",
        table = table.qualified(),
        keys = keys.join(", "),
        values = values.join(",\n       "),
    )
}

/// Ends a snapshot (see [`super::sql::sweep_statement`]); versions are padded text.
pub fn sweep_statement(table: &PgTable) -> String {
    format!(
        "UPDATE {} SET _deleted = true, item = NULL, item_dynamodb = NULL, _version = $1, _updated_at = CURRENT_TIMESTAMP \
         WHERE _deleted = false AND _version < $1",
        table.qualified()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TableSchema;

    fn table() -> PgTable {
        let schema = TableSchema::new("orders", &[("pk", KeyKind::S), ("sk", KeyKind::N)]);
        PgTable::new(&schema, "doc", "").unwrap()
    }

    #[test]
    fn ddl_uses_crate_types() {
        let ddl = create_statement(&table());
        assert!(
            ddl.starts_with("CREATE TABLE IF NOT EXISTS \"doc\".\"orders\""),
            "{ddl}"
        );
        assert!(ddl.contains("item OBJECT(DYNAMIC)"), "{ddl}");
        assert!(ddl.contains("\"sk\" TEXT NOT NULL"), "{ddl}");
        assert!(ddl.contains("_version TEXT NOT NULL"), "{ddl}");
        assert!(ddl.contains("PRIMARY KEY (\"pk\", \"sk\")"), "{ddl}");
        assert!(!ddl.contains("numeric"), "{ddl}");
    }

    #[test]
    fn upsert_is_idempotent_by_version_without_a_where_clause() {
        let sql = upsert_statement(&table(), 2);
        assert!(
            sql.contains("($1, $2, $3::OBJECT, $4, $5, $6::BOOLEAN, CURRENT_TIMESTAMP)"),
            "{sql}"
        );
        assert!(sql.contains("($7, $8, $9::OBJECT"), "{sql}");
        assert!(!sql.contains("WHERE"), "{sql}");
        assert!(sql.contains(
            "item = CASE WHEN \"doc\".\"orders\"._version <= excluded._version THEN excluded.item ELSE \"doc\".\"orders\".item END"
        ), "{sql}");
        assert!(sql.contains("_version = CASE WHEN"), "{sql}");
    }
}
