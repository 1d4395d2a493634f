//! The `postgres` sink: a live, queryable copy of each DynamoDB table,
//! written with versioned upserts and tombstones in one transaction per
//! batch; and the SQL of its `cratedb` dialect.

mod auto_columns;
mod config;
mod copy;
pub mod cratedb;
mod ddl;
mod exactly_once;
mod kinds;
mod sql;
mod tls;
mod typed;
mod writer;

pub use config::{PgWriteMethod, PostgresSinkConfig, SqlDialect};
pub use kinds::PostgresKinds;
pub use sql::{create_statements, upsert_statement, PgTable};
pub use tls::{parse_url, Connector};
pub use writer::PostgresSink;
