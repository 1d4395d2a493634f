//! What can go wrong writing a change file as Parquet or reading one back,
//! each with the column, row or step it happened at.

use arrow_schema::ArrowError;
use parquet::errors::ParquetError;

use crate::decode::DecodeError;
use crate::model::json::JsonError;
use crate::model::SequenceNumberError;

/// A value parser's finding (integer, float, JSON string or decimal).
pub type ParseFailure = Box<dyn std::error::Error + Send + Sync>;

/// Why a typed column's value cannot be written for a change: the change is
/// refused (dead letter), the rest of the batch is written.
#[derive(Debug, thiserror::Error)]
pub enum ColumnValueError {
    /// The image holding the value is not valid DynamoDB JSON.
    #[error("image does not decode: {source}")]
    Image {
        /// The decoder's finding.
        #[source]
        source: JsonError,
    },
    /// The attribute's value does not fit the column's type.
    #[error("attribute {attribute:?} for column {column}: {reason}")]
    DoesNotFit {
        /// The source attribute.
        attribute: String,
        /// The typed column.
        column: String,
        /// Why the value does not fit (the column type's rule).
        reason: String,
    },
}

/// Why a batch cannot be written as a Parquet file, or a Parquet change
/// file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ParquetFileError {
    /// A typed column's value does not fit (when writing without a
    /// pre-check).
    #[error(transparent)]
    Value(#[from] ColumnValueError),
    /// A typed column was given a number of values other than one per change.
    #[error("column {column} has {values} values for {events} events")]
    Shape {
        /// The typed column.
        column: String,
        /// Values given.
        values: usize,
        /// Changes in the file.
        events: usize,
    },
    /// A value text accepted for a column does not parse as the column's type.
    #[error("column {column}: value {text} is not {expected}: {reason}")]
    Parse {
        /// The typed column.
        column: String,
        /// The value's JSON text.
        text: String,
        /// The Arrow type the column holds.
        expected: &'static str,
        /// The parser's finding.
        #[source]
        reason: ParseFailure,
    },
    /// A change's keys do not serialise as JSON.
    #[error("keys of change {event_id} do not serialise: {source}")]
    Keys {
        /// The change's event id.
        event_id: String,
        /// The serialiser's finding.
        #[source]
        source: serde_json::Error,
    },
    /// Arrow refused the columns.
    #[error("cannot {step}: {source}")]
    Arrow {
        /// What was being done (`build the record batch`).
        step: &'static str,
        /// Arrow's finding.
        #[source]
        source: ArrowError,
    },
    /// The Parquet writer or reader failed.
    #[error("cannot {step}: {source}")]
    Parquet {
        /// What was being done (`write the file`, `read the footer`).
        step: &'static str,
        /// The Parquet library's finding.
        #[source]
        source: ParquetError,
    },
    /// The file lacks one of the fixed columns.
    #[error("the Parquet file has no column {0:?}")]
    MissingColumn(&'static str),
    /// A fixed column has another type than the one written.
    #[error("column {column:?} is not {expected}")]
    ColumnType {
        /// The fixed column.
        column: &'static str,
        /// The type it must have.
        expected: &'static str,
    },
    /// One row does not hold a change.
    #[error("row {row}: {problem}")]
    Row {
        /// The row's number in the file, from 1.
        row: usize,
        /// What is wrong with it.
        #[source]
        problem: RowError,
    },
}

/// Why one row of a Parquet change file is not a change.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// The `op` column holds a name that is not an operation.
    #[error("unknown op {0:?}")]
    UnknownOp(String),
    /// The keys or an image is not valid DynamoDB JSON.
    #[error("column {column}: {source}")]
    Json {
        /// The column (`keys`, `new_image`, `old_image`).
        column: &'static str,
        /// The decoder's finding.
        #[source]
        source: DecodeError,
    },
    /// The `sequence` column is not a sequence number.
    #[error(transparent)]
    Sequence(#[from] SequenceNumberError),
}

impl ParquetFileError {
    /// The Arrow error of `step`.
    pub fn arrow(step: &'static str) -> impl FnOnce(ArrowError) -> Self {
        move |source| Self::Arrow { step, source }
    }

    /// The Parquet error of `step`.
    pub fn parquet(step: &'static str) -> impl FnOnce(ParquetError) -> Self {
        move |source| Self::Parquet { step, source }
    }
}
