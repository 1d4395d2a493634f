//! Why a transform does not fit one change: the change is dead-lettered
//! with this reason, the rest of the chunk goes on.

use super::CastTarget;
use crate::model::json::JsonError;
use crate::model::NumberError;

/// Why a transform cannot be applied to a change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// An image to edit is not valid DynamoDB JSON.
    #[error("image does not decode: {0}")]
    Image(#[from] JsonError),
    /// A `cast` does not fit the attribute's value.
    #[error("cast of {attribute:?}: {problem}")]
    Cast {
        /// The attribute cast.
        attribute: String,
        /// Why its value does not cast.
        #[source]
        problem: CastError,
    },
}

/// Why a value cannot be cast.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CastError {
    /// A string is not a number.
    #[error(transparent)]
    Number(#[from] NumberError),
    /// A string is not an RFC 3339 time.
    #[error("{text:?} is not an RFC 3339 time: {source}")]
    Time {
        /// The string.
        text: String,
        /// The parser's finding.
        #[source]
        source: humantime::TimestampError,
    },
    /// A time before the Unix epoch.
    #[error("{0:?} is before 1970")]
    BeforeEpoch(String),
    /// The value's type does not cast to the target.
    #[error("a {tag} value cannot be cast to {to:?}")]
    Type {
        /// The value's DynamoDB type tag.
        tag: &'static str,
        /// The cast's target.
        to: CastTarget,
    },
}
