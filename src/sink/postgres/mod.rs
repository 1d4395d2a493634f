//! The `postgres` sink: a live, queryable copy of each DynamoDB table,
//! written with versioned upserts and tombstones in one transaction per batch.

mod sql;
mod writer;

pub use sql::{create_statements, upsert_statement, PgTable};
pub use writer::PostgresSink;
