//! The embedded `sqlite` sink: a replica table per source table, written with
//! versioned upserts so that replays never regress an item and deletes stay
//! deleted (tombstones).

mod config;
mod schema;
mod writer;

pub use config::SqliteSinkConfig;
pub use schema::{live_view_name, META_COLUMNS};
pub use writer::SqliteSink;

#[cfg(test)]
mod tests;
