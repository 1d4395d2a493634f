//! The `postgres` sink: a live, queryable copy of each DynamoDB table,
//! written with versioned upserts and tombstones in one transaction per
//! batch; and the SQL of its `cratedb` dialect.

pub mod cratedb;
mod sql;
mod writer;

pub use sql::{create_statements, upsert_statement, PgTable};
pub use writer::PostgresSink;
