//! Credentials for requests the engine signs itself, cached until shortly before they expire.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use tokio::sync::Mutex;

/// Refresh this long before expiry.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// A credentials provider with a cache, so that signing a request does not
/// call the provider (which may be instance metadata or STS) every time.
/// Clones share one cache.
#[derive(Clone)]
pub struct CachedCredentials {
    provider: SharedCredentialsProvider,
    cached: std::sync::Arc<Mutex<Option<Credentials>>>,
}

impl CachedCredentials {
    /// Caches `provider`'s credentials.
    pub fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            provider,
            cached: std::sync::Arc::new(Mutex::new(None)),
        }
    }

    /// Current credentials, fetched again when missing or about to expire.
    pub async fn get(&self) -> Result<Credentials, String> {
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref() {
            let fresh = credentials
                .expiry()
                .is_none_or(|expiry| expiry > SystemTime::now() + REFRESH_MARGIN);
            if fresh {
                return Ok(credentials.clone());
            }
        }
        let credentials = self.provider.provide_credentials().await.map_err(|err| {
            format!(
                "no AWS credentials: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            )
        })?;
        *cached = Some(credentials.clone());
        Ok(credentials)
    }
}
