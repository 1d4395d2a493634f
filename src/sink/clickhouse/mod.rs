//! The `clickhouse` sink: versioned state (ReplacingMergeTree) or an
//! append-only change log, written over the HTTP interface with
//! (optionally gzipped) TabSeparated inserts. Without the `clickhouse`
//! feature only the column types and their kinds are built (the s3 sink
//! and the schema report name columns with them).

#[cfg(feature = "clickhouse")]
mod auto_columns;
#[cfg(feature = "clickhouse")]
mod client;
mod column_type;
#[cfg(feature = "clickhouse")]
mod config;
#[cfg(feature = "clickhouse")]
mod ddl;
#[cfg(feature = "clickhouse")]
mod inferred_rows;
mod kinds;
#[cfg(feature = "clickhouse")]
mod rows;
#[cfg(feature = "clickhouse")]
mod schema_history;
#[cfg(feature = "clickhouse")]
mod server;
#[cfg(feature = "clickhouse")]
mod tsv;
#[cfg(feature = "clickhouse")]
mod writer;

#[cfg(feature = "clickhouse")]
pub use client::{ClickHouseClient, ClickHouseError, ErrorKind};
pub use column_type::ColumnType;
#[cfg(feature = "clickhouse")]
pub use config::{ClickHouseMode, ClickHouseSinkConfig};
#[cfg(feature = "clickhouse")]
pub use ddl::{create_table_statement, TargetTable};
#[cfg(feature = "clickhouse")]
pub use inferred_rows::Findings;
pub use kinds::ClickHouseKinds;
#[cfg(feature = "clickhouse")]
pub use rows::encode_row;
#[cfg(feature = "clickhouse")]
pub use server::{Capabilities, ServerVersion};
#[cfg(feature = "clickhouse")]
pub use writer::ClickHouseSink;
