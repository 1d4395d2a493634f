//! The `clickhouse` sink: versioned state (ReplacingMergeTree) or an
//! append-only change log, written over the HTTP interface with
//! (optionally gzipped) TabSeparated inserts.

mod auto_columns;
mod client;
mod column_type;
mod config;
mod ddl;
mod inferred_rows;
mod kinds;
mod rows;
mod schema_history;
mod server;
mod tsv;
mod writer;

pub use client::{ClickHouseClient, ClickHouseError, ErrorKind};
pub use column_type::ColumnType;
pub use config::{ClickHouseMode, ClickHouseSinkConfig};
pub use ddl::{create_table_statement, TargetTable};
pub use inferred_rows::Findings;
pub use kinds::ClickHouseKinds;
pub use rows::encode_row;
pub use server::{Capabilities, ServerVersion};
pub use writer::ClickHouseSink;
