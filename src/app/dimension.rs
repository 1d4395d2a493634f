//! The enrichment dimension table: loaded from a local file or S3 before
//! the pipeline starts (a table that cannot be loaded stops it), then
//! checked every `reload_interval` and replaced when it changed. A reload
//! that fails keeps the table in use and logs why.

use std::sync::Arc;

use object_store::ObjectStoreExt;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::stores::Stores;
use super::EngineError;
use crate::config::{AwsConfig, EnrichConfig};
use crate::transform::{load_dimension, Dimension, DimensionFormat, Enrichment};

/// Where the table comes from and which version of it was loaded last.
pub(super) struct DimensionSource {
    config: EnrichConfig,
    version: Option<String>,
}

impl DimensionSource {
    /// A source for `config`; nothing is loaded yet.
    pub(super) fn new(config: EnrichConfig) -> Self {
        Self {
            config,
            version: None,
        }
    }

    /// The table, when it was never loaded or its file changed since.
    pub(super) async fn load_if_changed(
        &mut self,
        stores: &Stores,
    ) -> Result<Option<Dimension>, String> {
        let config = &self.config;
        let format = DimensionFormat::from_path(&config.path)
            .ok_or_else(|| format!("{}: unknown file type", config.path))?;
        let (version, bytes) = match config.path.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, key) = rest
                    .split_once('/')
                    .ok_or_else(|| format!("{}: expected s3://bucket/key", config.path))?;
                let store = stores.bucket(bucket)?;
                let path = object_store::path::Path::from(key);
                let meta = store
                    .head(&path)
                    .await
                    .map_err(|e| format!("{}: {e}", config.path))?;
                let version = format!("{:?}{}", meta.e_tag, meta.last_modified);
                if self.version.as_deref() == Some(version.as_str()) {
                    return Ok(None);
                }
                let bytes = store
                    .get(&path)
                    .await
                    .map_err(|e| format!("{}: {e}", config.path))?
                    .bytes()
                    .await
                    .map_err(|e| format!("{}: {e}", config.path))?;
                (version, bytes)
            }
            None => {
                let meta =
                    std::fs::metadata(&config.path).map_err(|e| format!("{}: {e}", config.path))?;
                let version = format!("{:?}{}", meta.modified().ok(), meta.len());
                if self.version.as_deref() == Some(version.as_str()) {
                    return Ok(None);
                }
                let bytes =
                    std::fs::read(&config.path).map_err(|e| format!("{}: {e}", config.path))?;
                (version, bytes::Bytes::from(bytes))
            }
        };
        let dimension = load_dimension(bytes, format, &config.key, &config.columns)
            .map_err(|e| format!("{}: {e}", config.path))?;
        tracing::info!(path = %config.path, rows = dimension.len(), "dimension table loaded");
        self.version = Some(version);
        Ok(Some(dimension))
    }
}

/// Loads the dimension table of `config` (failing when it cannot be
/// loaded) and keeps it fresh in a background task until the returned
/// guard is dropped.
pub(super) async fn start_enrichment(
    config: Option<&EnrichConfig>,
    aws: &AwsConfig,
) -> Result<(Option<Arc<Enrichment>>, DropGuard), EngineError> {
    let stop = CancellationToken::new();
    let guard = stop.clone().drop_guard();
    let Some(config) = config else {
        return Ok((None, guard));
    };
    let stores = Stores::new(aws).await;
    let mut source = DimensionSource::new(config.clone());
    let enrichment = Arc::new(Enrichment::new(config.clone()));
    match source.load_if_changed(&stores).await {
        Ok(Some(dimension)) => enrichment.replace(dimension),
        Ok(None) => {}
        Err(message) => return Err(EngineError::Config(format!("enrichment: {message}"))),
    }
    let handle = Arc::clone(&enrichment);
    let interval = config
        .reload_interval
        .max(std::time::Duration::from_millis(100));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = stop.cancelled() => return,
            }
            match source.load_if_changed(&stores).await {
                Ok(Some(dimension)) => handle.replace(dimension),
                Ok(None) => {}
                Err(message) => tracing::warn!(
                    "enrichment: reloading the dimension table failed ({message}); the table loaded before stays in use"
                ),
            }
        }
    });
    Ok((Some(enrichment), guard))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn loads_again_only_when_the_file_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dim.csv");
        std::fs::write(&path, "id,name\n1,Ada\n").unwrap();
        let config = EnrichConfig {
            path: path.display().to_string(),
            key: "id".into(),
            field: "customer".into(),
            columns: vec!["name".into()],
            prefix: "c_".into(),
            reload_interval: Duration::ZERO,
        };
        let aws = AwsConfig {
            region: Some("us-east-1".into()),
            ..AwsConfig::default()
        };
        let stores = Stores::new(&aws).await;
        let mut source = DimensionSource::new(config.clone());
        let first = source.load_if_changed(&stores).await.unwrap().unwrap();
        assert_eq!(first.len(), 1);
        assert!(source.load_if_changed(&stores).await.unwrap().is_none());
        std::fs::write(&path, "id,name\n1,Ada\n2,Grace\n").unwrap();
        let second = source.load_if_changed(&stores).await.unwrap().unwrap();
        assert_eq!(second.len(), 2);
        std::fs::write(&path, "name\nno key column\n").unwrap();
        let err = source.load_if_changed(&stores).await.unwrap_err();
        assert!(err.contains("\"id\""), "{err}");
    }

    #[tokio::test]
    async fn a_table_that_cannot_load_stops_the_start() {
        let config = EnrichConfig {
            path: "/nonexistent/dim.csv".into(),
            key: "id".into(),
            field: "customer".into(),
            columns: vec!["name".into()],
            prefix: String::new(),
            reload_interval: Duration::from_secs(60),
        };
        let Err(err) = start_enrichment(Some(&config), &AwsConfig::default()).await else {
            panic!("a missing dimension file started");
        };
        assert!(err.to_string().contains("/nonexistent/dim.csv"), "{err}");
    }
}
