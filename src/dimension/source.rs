//! Which version of a dimension file an index was built from: its place,
//! size and version (modification time for a local file, ETag for an S3
//! object). An index whose version still matches is reused.

use std::path::Path;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::DimensionError;

/// One version of a dimension file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceId {
    /// The path or `s3://` URL as configured.
    pub location: String,
    /// Bytes.
    pub size: u64,
    /// Modification time in nanoseconds (local) or the ETag (S3).
    pub version: String,
}

impl SourceId {
    /// The version of the local file `path`.
    pub fn local(path: &str) -> Result<Self, DimensionError> {
        let meta = std::fs::metadata(Path::new(path)).map_err(|e| DimensionError::io(path, e))?;
        if !meta.is_file() {
            return Err(DimensionError::File {
                path: path.to_owned(),
                problem: "not a file".into(),
            });
        }
        let modified = meta
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |age| age.as_nanos());
        Ok(Self {
            location: path.to_owned(),
            size: meta.len(),
            version: format!("mtime:{modified}"),
        })
    }
}
