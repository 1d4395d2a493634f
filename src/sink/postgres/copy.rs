//! The `copy` write method: rows go into a per-connection temporary staging
//! table with binary COPY, then one `INSERT … SELECT … ON CONFLICT` merges
//! them into the target with the same versioned rule as the multi-row upsert.

use std::pin::pin;

use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Transaction;

use super::sql::{cast_key, quote, versioned_insert, PgTable};
use super::typed;

/// The staging table's name (in `pg_temp`, so per connection).
pub fn stage_name(table: &PgTable) -> String {
    quote(&format!("dynamo_cdc_stage_{}", table.name))
}

/// DDL of the staging table: every column text, emptied at each commit.
/// The table is made anew (dropped first): its typed columns follow the target's.
pub fn create_stage(table: &PgTable) -> String {
    let mut columns: Vec<String> = table
        .keys
        .iter()
        .map(|(n, _)| format!("{} text", quote(n)))
        .collect();
    columns.extend(
        ["item", "item_dynamodb", "_version", "_deleted"]
            .iter()
            .map(|c| format!("{c} text")),
    );
    columns.extend(
        table
            .columns
            .iter()
            .map(|c| format!("{} text", quote(&c.name))),
    );
    format!(
        "DROP TABLE IF EXISTS pg_temp.{stage}; CREATE TEMPORARY TABLE {stage} ({}) ON COMMIT DELETE ROWS",
        columns.join(", "),
        stage = stage_name(table),
    )
}

/// The COPY statement filling the staging table.
pub fn copy_statement(table: &PgTable) -> String {
    format!("COPY {} FROM STDIN (FORMAT binary)", stage_name(table))
}

/// Merges the staging table into the target: newer versions win, older
/// ones (replays) change nothing. The casts are the multi-row upsert's.
pub fn merge_statement(table: &PgTable) -> String {
    let cells: Vec<String> = table
        .keys
        .iter()
        .map(|(n, kind)| cast_key(&quote(n), *kind))
        .collect();
    let typed: String = table
        .columns
        .iter()
        .map(|c| format!(", {}", typed::cast(c.kind, &quote(&c.name))))
        .collect();
    versioned_insert(
        table,
        &format!(
            "SELECT {}, item::jsonb, item_dynamodb::jsonb, _version::numeric, _deleted::boolean, now(){typed}\nFROM {}",
            cells.join(", "),
            stage_name(table)
        ),
    )
}

/// Copies `rows` (at most one per key) into the staging table and merges
/// them into the target, inside the open transaction. The staging table
/// must exist on this connection ([`create_stage`]).
pub async fn copy_upsert(
    tx: &Transaction<'_>,
    table: &PgTable,
    rows: &[&Vec<Option<String>>],
) -> Result<(), tokio_postgres::Error> {
    let columns = table.keys.len() + 4 + table.columns.len();
    let sink = tx.copy_in(&copy_statement(table)).await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &vec![Type::TEXT; columns]));
    for row in rows {
        let values: Vec<&(dyn ToSql + Sync)> =
            row.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&values).await?;
    }
    writer.as_mut().finish().await?;
    tx.execute(&merge_statement(table), &[]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{KeyKind, TableSchema};

    fn table() -> PgTable {
        let schema = TableSchema::new("Orders", &[("pk", KeyKind::B), ("sk", KeyKind::N)]);
        PgTable::new(&schema, "cdc", "").expect("table")
    }

    #[test]
    fn stage_is_all_text_and_per_connection() {
        assert_eq!(
            create_stage(&table()),
            "DROP TABLE IF EXISTS pg_temp.\"dynamo_cdc_stage_orders\"; CREATE TEMPORARY TABLE \"dynamo_cdc_stage_orders\" (\"pk\" text, \"sk\" text, \
             item text, item_dynamodb text, _version text, _deleted text) ON COMMIT DELETE ROWS"
        );
    }

    #[test]
    fn merge_casts_like_the_upsert_and_never_regresses() {
        let sql = merge_statement(&table());
        assert!(
            sql.contains("SELECT decode(\"pk\", 'base64'), \"sk\"::numeric, item::jsonb"),
            "{sql}"
        );
        assert!(sql.contains("ON CONFLICT (\"pk\", \"sk\")"), "{sql}");
        assert!(
            sql.ends_with("WHERE t._version <= EXCLUDED._version"),
            "{sql}"
        );
    }
}
