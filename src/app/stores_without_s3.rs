//! S3 in a build without the `s3` feature: every object is refused, naming
//! the feature (validation refuses `s3://` paths first).

use bytes::Bytes;
use futures_util::stream::BoxStream;

use super::store_error::StoreError;
use crate::config::AwsConfig;

/// No clients: this build reaches no S3.
pub struct Stores;

impl Stores {
    /// Nothing to build.
    pub fn new(_aws: &AwsConfig) -> Self {
        Self
    }

    /// Refuses: this build reads no S3 objects.
    pub async fn head(&self, _bucket: &str, _key: &str) -> Result<(u64, String), StoreError> {
        Err(not_built())
    }

    /// Refuses: this build reads no S3 objects.
    pub async fn get(
        &self,
        _bucket: &str,
        _key: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, StoreError>>, StoreError> {
        Err(not_built())
    }
}

fn not_built() -> StoreError {
    StoreError::NotBuilt(crate::error_text::not_built("reading s3:// files", "s3"))
}
