//! The enrichment dimension table, loaded from a local file or S3 and
//! reloaded when it changes.

use std::time::Instant;

use object_store::ObjectStoreExt;

use super::stores::Stores;
use crate::config::EnrichConfig;
use crate::transform::{load_dimension, Dimension, DimensionFormat};

/// The current dimension table and when it was last checked.
pub struct DimensionCache {
    config: Option<EnrichConfig>,
    current: Option<Dimension>,
    version: Option<String>,
    checked: Option<Instant>,
}

impl DimensionCache {
    /// A cache for `config` (nothing to do without enrichment).
    pub fn new(config: Option<EnrichConfig>) -> Self {
        Self {
            config,
            current: None,
            version: None,
            checked: None,
        }
    }

    /// The table and its settings, once loaded.
    pub fn current(&self) -> Option<(&Dimension, &EnrichConfig)> {
        Some((self.current.as_ref()?, self.config.as_ref()?))
    }

    /// Loads the table when it was never loaded, or reloads it when the
    /// reload interval passed and the file changed.
    pub async fn refresh(&mut self, stores: &Stores) -> Result<(), String> {
        let Some(config) = &self.config else {
            return Ok(());
        };
        if self
            .checked
            .is_some_and(|at| at.elapsed() < config.reload_interval)
        {
            return Ok(());
        }
        self.checked = Some(Instant::now());
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
                    return Ok(());
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
                    return Ok(());
                }
                let bytes =
                    std::fs::read(&config.path).map_err(|e| format!("{}: {e}", config.path))?;
                (version, bytes::Bytes::from(bytes))
            }
        };
        let dimension = load_dimension(bytes, format, &config.key, &config.columns)
            .map_err(|e| format!("{}: {e}", config.path))?;
        tracing::info!(path = %config.path, rows = dimension.len(), "dimension table loaded");
        self.current = Some(dimension);
        self.version = Some(version);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::AwsConfig;

    #[tokio::test]
    async fn reloads_when_the_file_changes() {
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
        let stores = Stores::new(&AwsConfig {
            region: Some("us-east-1".into()),
            ..AwsConfig::default()
        })
        .await;
        let mut cache = DimensionCache::new(Some(config));
        cache.refresh(&stores).await.unwrap();
        assert_eq!(cache.current().unwrap().0.len(), 1);
        std::fs::write(&path, "id,name\n1,Ada\n2,Grace\n").unwrap();
        cache.refresh(&stores).await.unwrap();
        assert_eq!(cache.current().unwrap().0.len(), 2);
        std::fs::write(&path, "name\nno key column\n").unwrap();
        assert!(cache.refresh(&stores).await.unwrap_err().contains("\"id\""));
    }
}
