//! S3 buckets (by name) and the SQS client of the loader.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::ObjectStoreExt as _;

use crate::config::AwsConfig;

/// Clients, built once.
pub struct Stores {
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    region: String,
    endpoint: Option<String>,
    buckets: Mutex<HashMap<String, Arc<AmazonS3>>>,
}

impl Stores {
    /// Clients for the `[aws]` settings (region, profile, endpoint).
    pub async fn new(aws: &AwsConfig) -> Self {
        let mut loader = crate::aws::config_loader();
        if let Some(region) = &aws.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(profile) = &aws.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &aws.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let sdk = loader.load().await;
        let region = sdk
            .region()
            .map(ToString::to_string)
            .unwrap_or_else(|| "us-east-1".into());
        Self {
            sqs: aws_sdk_sqs::Client::new(&sdk),
            region,
            endpoint: aws.endpoint_url.clone(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The store of one bucket.
    pub fn bucket(&self, name: &str) -> Result<Arc<AmazonS3>, String> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = buckets.get(name) {
            return Ok(Arc::clone(store));
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(name)
            .with_region(&self.region);
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(true);
        }
        let store = Arc::new(
            builder
                .build()
                .map_err(|e| format!("S3 bucket {name}: {e}"))?,
        );
        buckets.insert(name.to_owned(), Arc::clone(&store));
        Ok(store)
    }

    /// The size and version (ETag, or the modification time) of an object.
    pub async fn head(&self, bucket: &str, key: &str) -> Result<(u64, String), String> {
        let meta = self
            .bucket(bucket)?
            .head(&object_store::path::Path::from(key))
            .await
            .map_err(|e| e.to_string())?;
        let version = meta
            .e_tag
            .unwrap_or_else(|| format!("modified:{}", meta.last_modified));
        Ok((meta.size, version))
    }

    /// The bytes of an object, a chunk at a time.
    pub async fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, String>>, String> {
        let object = self
            .bucket(bucket)?
            .get(&object_store::path::Path::from(key))
            .await
            .map_err(|e| e.to_string())?;
        Ok(object
            .into_stream()
            .map(|chunk| chunk.map_err(|e| e.to_string()))
            .boxed())
    }
}
