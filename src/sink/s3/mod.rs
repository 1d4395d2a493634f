//! The `s3` sink: batches of change events as gzipped JSON Lines or Parquet objects in a
//! landing zone, each announced on SQS once durable; the checkpoint moves
//! only after both.

mod auto_columns;
mod config;
mod keys;
mod kinds;
mod notice;
mod parquet_columns;
mod parquet_error;
mod parquet_format;
mod schema_objects;
mod writer;

pub use config::{S3Format, S3SinkConfig};
pub use keys::object_key;
pub use kinds::ParquetKinds;
pub use notice::ObjectNotice;
pub use parquet_error::{ColumnValueError, ParquetFileError, RowError};
pub use parquet_format::{decode_events, encode_events, encode_filled, FIXED_COLUMNS};
pub use schema_objects::{event_key, HistoryError, SchemaObjects, SCHEMA_FOLDER};
pub use writer::S3Sink;
