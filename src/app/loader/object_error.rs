//! Why an announced object cannot be loaded, and whether it ever could be.

use crate::app::store_error::StoreError;
use crate::decode::DecodeError;
use crate::sink::s3::ParquetFileError;

/// Why an announced object cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The bucket or the object cannot be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The object is not gzip.
    #[error("not gzipped JSON Lines: {0}")]
    Gzip(#[source] std::io::Error),
    /// One line of a JSON Lines object is not a change.
    #[error("line {line}: {source}")]
    Line {
        /// The line's number, from 1.
        line: usize,
        /// The decoder's finding.
        #[source]
        source: DecodeError,
    },
    /// A Parquet object cannot be read as changes.
    #[error(transparent)]
    Parquet(#[from] ParquetFileError),
    /// The notice names a format no writer produces.
    #[error("unknown object format {0:?}")]
    UnknownFormat(String),
    /// The object holds another number of changes than its notice says.
    #[error("the notice announces {announced} records, the object holds {held}")]
    Count {
        /// Records the notice announces.
        announced: usize,
        /// Changes the object holds.
        held: usize,
    },
}

impl ObjectError {
    /// True when the object never will load (corrupt, missing, wrong
    /// shape): it is dead-lettered. Otherwise (S3 unreachable) the message
    /// is left for redelivery.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Store(err) => err.is_not_found(),
            _ => true,
        }
    }
}
