//! Why an S3 bucket or object cannot be reached, naming which.

/// Why a bucket's store or one of its objects cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bucket's client cannot be built (bad name, region or endpoint).
    #[cfg(feature = "s3")]
    #[error("S3 bucket {bucket}: {source}")]
    Bucket {
        /// The bucket.
        bucket: String,
        /// The store's finding.
        #[source]
        source: object_store::Error,
    },
    /// Reading an object (its metadata or its bytes) failed.
    #[cfg(feature = "s3")]
    #[error("s3://{bucket}/{key}: {source}")]
    Object {
        /// The bucket.
        bucket: String,
        /// The object's key.
        key: String,
        /// The store's finding (`NotFound` when there is no such object).
        #[source]
        source: object_store::Error,
    },
    /// This build reads no S3 objects.
    #[cfg(not(feature = "s3"))]
    #[error("{0}")]
    NotBuilt(String),
}

#[cfg(feature = "s3")]
impl StoreError {
    /// True when the object does not exist: retrying cannot help.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::Object {
                source: object_store::Error::NotFound { .. },
                ..
            }
        )
    }
}
