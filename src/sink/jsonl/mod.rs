//! The embedded `jsonl` sink: change events appended to local JSON Lines
//! files, one directory per source table, optionally gzipped and rotated by size.

mod config;
mod files;
mod writer;

pub use config::JsonlSinkConfig;
pub use files::{file_name, repair_tail};
pub use writer::JsonlSink;
