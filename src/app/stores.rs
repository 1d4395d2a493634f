//! S3 buckets (by name) and the SQS client of the loader.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use object_store::aws::{AmazonS3, AmazonS3Builder};

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
}
