//! Why a replay stopped, naming the file, the chunk or the records at fault.

use crate::coordinator::PublishError;
use crate::dead_letter::DeadLetterError;
use crate::model::SequenceNumberError;

/// What a replay asks for when it cannot infer the table's keys.
const KEYS_HINT: &str = "the table's keys are unknown (pass --keys pk:S,sk:N)";

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// An input file or directory cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory, as given or found.
        path: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A signal stopped the reading.
    #[error("stopped by a signal")]
    Stopped,
    /// An undecodable entry could not be written to the dead-letter file.
    #[error("writing a dead letter: {0}")]
    DeadLetter(#[from] DeadLetterError),
    /// A chunk's number is no sequence number (past 10^40 chunks).
    #[error("numbering chunk {chunk}: {source}")]
    ChunkNumber {
        /// The chunk's number in its file.
        chunk: u64,
        /// Why it is no sequence number.
        #[source]
        source: SequenceNumberError,
    },
    /// A chunk could not be handed to the sinks.
    #[error("handing chunk {chunk} to the sinks: {source}")]
    Publish {
        /// The chunk's number in its file.
        chunk: u64,
        /// Why.
        #[source]
        source: Box<PublishError>,
    },
    /// No keys were given and the input holds no record to infer them from.
    #[error("the input holds no record: {KEYS_HINT}")]
    NoRecords,
    /// No keys were given and no record's keys could be read.
    #[error("no record in the input could be decoded: {reasons}{more}; so {KEYS_HINT}")]
    NoKeys {
        /// The first records' reasons, `; `-separated.
        reasons: String,
        /// ` (and N more)` when more records could not be read, else empty.
        more: String,
    },
}

impl ReplayError {
    /// The I/O error of reading `path`.
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
