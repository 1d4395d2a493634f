//! The `copy` write method: rows go into a per-connection temporary staging
//! table with binary COPY, then one `INSERT … SELECT … ON CONFLICT` merges
//! them into the target with the same versioned rule as the multi-row upsert.

use std::pin::pin;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::Transaction;

use super::sql::{cast_key, quote, versioned_insert, PgTable};
use super::typed::{self, Param};

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
/// must exist on this connection ([`create_stage`]). The rows are encoded
/// here in COPY's binary format and sent in a few large messages.
pub async fn copy_upsert(
    tx: &Transaction<'_>,
    table: &PgTable,
    rows: &[&Vec<Param<'_>>],
) -> Result<(), tokio_postgres::Error> {
    let mut sink = pin!(tx.copy_in::<_, Bytes>(&copy_statement(table)).await?);
    let mut buffer = BytesMut::with_capacity(COPY_MESSAGE_BYTES + COPY_MESSAGE_BYTES / 4);
    buffer.extend_from_slice(BINARY_COPY_HEADER);
    for row in rows {
        push_binary_row(&mut buffer, row);
        if buffer.len() >= COPY_MESSAGE_BYTES {
            sink.send(buffer.split().freeze()).await?;
        }
    }
    buffer.put_i16(-1);
    sink.send(buffer.freeze()).await?;
    sink.as_mut().finish().await?;
    tx.execute(&merge_statement(table), &[]).await?;
    Ok(())
}

/// Bytes gathered before a CopyData message is sent.
const COPY_MESSAGE_BYTES: usize = 256 * 1024;

/// COPY's binary header: signature, flags, header extension length.
const BINARY_COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Appends one row in COPY's binary format: the field count, then each
/// field's byte length (-1 for NULL) and its text. Text fields are sent
/// as their UTF-8 bytes, which is the `text` type's binary form. A row
/// has at most 1,600 fields (PostgreSQL's column limit) and a field comes
/// from a DynamoDB item (at most 400 KB), so both counts fit their widths.
fn push_binary_row(buffer: &mut BytesMut, row: &[Param<'_>]) {
    buffer.put_i16(i16::try_from(row.len()).unwrap_or(i16::MAX));
    for field in row {
        match field {
            None => buffer.put_i32(-1),
            Some(text) => {
                buffer.put_i32(i32::try_from(text.len()).unwrap_or(i32::MAX));
                buffer.extend_from_slice(text.as_bytes());
            }
        }
    }
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
    fn binary_rows_carry_counts_lengths_and_nulls() {
        let mut buffer = BytesMut::new();
        buffer.extend_from_slice(BINARY_COPY_HEADER);
        assert_eq!(
            buffer.len(),
            19,
            "signature 11, flags 4, extension length 4"
        );
        buffer.clear();
        push_binary_row(&mut buffer, &[Some("ab".into()), None, Some("".into())]);
        assert_eq!(
            &buffer[..],
            &[0, 3, 0, 0, 0, 2, b'a', b'b', 255, 255, 255, 255, 0, 0, 0, 0][..]
        );
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
