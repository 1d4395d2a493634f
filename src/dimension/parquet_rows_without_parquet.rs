//! Parquet dimension files in a build without the `parquet` feature: every
//! file is refused, naming the feature (validation refuses them first).

use super::read::{EncodedRow, RowSpec};
use super::DimensionError;

/// Refuses the file: this build reads no Parquet.
pub(super) fn read(
    _file: std::fs::File,
    name: &str,
    _spec: &RowSpec,
    _on_row: &mut dyn FnMut(&EncodedRow) -> Result<(), DimensionError>,
) -> Result<(), DimensionError> {
    Err(DimensionError::File {
        path: name.to_owned(),
        problem: crate::error_text::not_built("reading Parquet", "parquet"),
    })
}
