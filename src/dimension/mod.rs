//! Dimension tables for the enrichment join: read from Parquet, CSV or
//! JSON Lines a row at a time, indexed in memory (columnar, for small
//! tables) or on disk (memory-mapped LMDB, for tables larger than memory),
//! and swapped whole when their file changes. No I/O beyond the local
//! files; fetching from S3 and the reload schedule live in `app`.

pub mod build;
mod codec;
pub mod config;
mod disk;
mod error;
mod index;
mod memory;
#[cfg(feature = "parquet")]
mod parquet_rows;
#[cfg(not(feature = "parquet"))]
#[path = "parquet_rows_without_parquet.rs"]
mod parquet_rows;
mod read;
mod source;
mod text_rows;

#[cfg(test)]
mod build_tests;

pub use build::{build, remove_other_indexes, reuse, BuildRequest};
pub use codec::{key_display, key_text, Cell, KeyBuilder};
pub use config::{DimensionConfig, DimensionMode};
pub use error::DimensionError;
pub use index::{DimensionTable, IndexReader, IndexStore, LoadedIndex};
pub use read::{read_rows, DimensionFormat, EncodedRow, Place, ReadCounts, RowSpec};
pub use source::SourceId;
