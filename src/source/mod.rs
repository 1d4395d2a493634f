//! Sources: only this layer talks to the stream APIs.

pub mod error;
pub mod signed;
pub mod snapshot;
pub mod streams;

pub use error::SourceError;
