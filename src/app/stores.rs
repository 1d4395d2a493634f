//! S3 buckets (by name) and the SQS client of the loader.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::ObjectStoreExt as _;
use tokio::sync::OnceCell;

use super::store_error::StoreError;
use crate::config::AwsConfig;

/// Clients, built on first use: a pipeline whose files are all local
/// never loads the AWS configuration (whose region chain would probe the
/// instance metadata service).
pub struct Stores {
    aws: AwsConfig,
    sdk: OnceCell<Sdk>,
    buckets: Mutex<HashMap<String, Arc<AmazonS3>>>,
}

/// What the AWS configuration chain gave.
struct Sdk {
    sqs: aws_sdk_sqs::Client,
    region: String,
}

impl Stores {
    /// Clients for the `[aws]` settings (region, profile, endpoint), built
    /// when first needed.
    pub fn new(aws: &AwsConfig) -> Self {
        Self {
            aws: aws.clone(),
            sdk: OnceCell::new(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    async fn sdk(&self) -> &Sdk {
        self.sdk
            .get_or_init(|| async {
                let aws = &self.aws;
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
                Sdk {
                    sqs: aws_sdk_sqs::Client::new(&sdk),
                    region,
                }
            })
            .await
    }

    /// The SQS client (the AWS configuration is loaded on the first call).
    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        self.sdk().await.sqs.clone()
    }

    /// The store of one bucket.
    pub async fn bucket(&self, name: &str) -> Result<Arc<AmazonS3>, StoreError> {
        if let Some(store) = self.cached(name) {
            return Ok(store);
        }
        let region = &self.sdk().await.region;
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(name)
            .with_region(region);
        if let Some(endpoint) = &self.aws.endpoint_url {
            builder = builder.with_endpoint(endpoint).with_allow_http(true);
        }
        let store = Arc::new(builder.build().map_err(|source| StoreError::Bucket {
            bucket: name.to_owned(),
            source,
        })?);
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), Arc::clone(&store));
        Ok(store)
    }

    fn cached(&self, name: &str) -> Option<Arc<AmazonS3>> {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// The size and version (ETag, or the modification time) of an object.
    pub async fn head(&self, bucket: &str, key: &str) -> Result<(u64, String), StoreError> {
        let meta = self
            .bucket(bucket)
            .await?
            .head(&object_store::path::Path::from(key))
            .await
            .map_err(object_error(bucket, key))?;
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
    ) -> Result<BoxStream<'static, Result<Bytes, StoreError>>, StoreError> {
        let object = self
            .bucket(bucket)
            .await?
            .get(&object_store::path::Path::from(key))
            .await
            .map_err(object_error(bucket, key))?;
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        Ok(object
            .into_stream()
            .map(move |chunk| chunk.map_err(object_error(&bucket, &key)))
            .boxed())
    }
}

/// The error of reading `key` in `bucket`; the names are copied only when
/// an error happens.
fn object_error<'a>(
    bucket: &'a str,
    key: &'a str,
) -> impl FnOnce(object_store::Error) -> StoreError + 'a {
    move |source| StoreError::Object {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        source,
    }
}
