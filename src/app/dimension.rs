//! The dimension tables of a pipeline or loader: each is fetched (a local
//! file is read where it is; an S3 object is downloaded beside its
//! indexes), indexed before the start (a table that cannot be loaded stops
//! it), then checked every `reload_interval` and, when its file changed,
//! indexed again aside and swapped in; a rebuild that fails keeps the
//! index in use and logs why. Joins never wait for a build.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt as _;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::stores::Stores;
use super::EngineError;
use crate::config::AwsConfig;
use crate::dimension::{
    self, BuildRequest, DimensionConfig, DimensionError, DimensionFormat, DimensionMode,
    DimensionTable, RowSpec, SourceId,
};
use crate::metric_names as names;
use crate::transform::EnrichConfig;

/// The loaded dimension tables by name, kept fresh until dropped.
pub(super) struct Dimensions {
    tables: HashMap<String, Arc<DimensionTable>>,
    _reloads: DropGuard,
}

impl Dimensions {
    /// The table named `name`.
    pub(super) fn get(&self, name: &str) -> Option<Arc<DimensionTable>> {
        self.tables.get(name).cloned()
    }
}

/// Loads every dimension table, the `[enrich]` one first (failing on the
/// first that cannot be loaded), and starts one reload task per table.
pub(super) async fn start_dimensions(
    dimensions: &[DimensionConfig],
    enrich: Option<&EnrichConfig>,
    state_dir: &Path,
    aws: &AwsConfig,
) -> Result<Dimensions, EngineError> {
    let configs: Vec<DimensionConfig> = enrich
        .map(EnrichConfig::dimension)
        .into_iter()
        .chain(dimensions.iter().cloned())
        .collect();
    let stop = CancellationToken::new();
    let guard = stop.clone().drop_guard();
    let mut tables = HashMap::new();
    if configs.is_empty() {
        return Ok(Dimensions {
            tables,
            _reloads: guard,
        });
    }
    let stores = Arc::new(Stores::new(aws));
    for config in &configs {
        let source = DimensionSource::new(config, state_dir)?;
        source
            .refresh(&stores)
            .await
            .map_err(|source| EngineError::Dimension {
                name: config.name.clone(),
                source,
            })?;
        tables.insert(config.name.clone(), Arc::clone(&source.table));
        tokio::spawn(source.keep_fresh(Arc::clone(&stores), stop.clone()));
    }
    Ok(Dimensions {
        tables,
        _reloads: guard,
    })
}

/// One dimension table and where its file and indexes are.
struct DimensionSource {
    config: DimensionConfig,
    format: DimensionFormat,
    index_dir: PathBuf,
    table: Arc<DimensionTable>,
}

impl DimensionSource {
    fn new(config: &DimensionConfig, state_dir: &Path) -> Result<Self, EngineError> {
        let format =
            DimensionFormat::from_path(&config.path).ok_or_else(|| EngineError::Dimension {
                name: config.name.clone(),
                source: DimensionError::UnknownFormat {
                    path: config.path.clone(),
                },
            })?;
        let root = config
            .index_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("dimensions"));
        let spec = RowSpec {
            key: config.key.clone(),
            columns: config.columns.clone(),
        };
        Ok(Self {
            format,
            index_dir: root.join(&config.name),
            table: Arc::new(DimensionTable::new(config.name.clone(), spec)),
            config: config.clone(),
        })
    }

    /// Checks the file every `reload_interval` until `stop`.
    async fn keep_fresh(self, stores: Arc<Stores>, stop: CancellationToken) {
        let interval = self
            .config
            .reload_interval
            .max(std::time::Duration::from_millis(100));
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = stop.cancelled() => return,
            }
            if let Err(err) = self.refresh(&stores).await {
                tracing::warn!(
                    dimension = %self.config.name,
                    "reloading the dimension table failed ({err}); the index built before stays in use"
                );
            }
        }
    }

    /// Installs an index of the file's current version unless the one in
    /// use is of it already: an index on disk that still matches is
    /// reused, else one is built.
    async fn refresh(&self, stores: &Stores) -> Result<(), DimensionError> {
        let source = self.identify(stores).await?;
        if self
            .table
            .current()
            .is_some_and(|index| index.source() == &source)
        {
            return Ok(());
        }
        let name = self.config.name.clone();
        if self.config.mode != DimensionMode::Memory {
            let (dir, wanted, spec) = (
                self.index_dir.clone(),
                source.clone(),
                self.table.spec().clone(),
            );
            let reused =
                tokio::task::spawn_blocking(move || dimension::reuse(&dir, &wanted, &spec))
                    .await
                    .map_err(|e| DimensionError::store(&self.index_dir, e))?;
            if let Some(index) = reused {
                tracing::info!(dimension = %name, rows = index.rows(), "dimension index reused: it still matches its file");
                metrics::counter!(names::DIMENSION_BUILDS, "dimension" => name, "outcome" => "reused").increment(1);
                self.table.install(index);
                return Ok(());
            }
        }
        let result = self.build(stores, &source).await;
        let outcome = if result.is_ok() { "built" } else { "failed" };
        metrics::counter!(names::DIMENSION_BUILDS, "dimension" => name.clone(), "outcome" => outcome)
            .increment(1);
        let index = result?;
        // A local file still being written while it was read: keep the
        // index in use, if there is one, and index the file again at the
        // next check.
        if self.table.current().is_some() && self.identify(stores).await? != source {
            tracing::warn!(dimension = %name, "the dimension file changed while it was indexed; indexing it again at the next check");
            return Ok(());
        }
        self.table.install(index);
        let (dir, keep) = (self.index_dir.clone(), source);
        tokio::task::spawn_blocking(move || dimension::remove_other_indexes(&dir, &keep));
        Ok(())
    }

    /// Fetches the file if it is remote, and indexes it off the runtime.
    async fn build(
        &self,
        stores: &Stores,
        source: &SourceId,
    ) -> Result<dimension::LoadedIndex, DimensionError> {
        let local = match self.config.path.strip_prefix("s3://") {
            Some(_) => Some(self.download(stores).await?),
            None => None,
        };
        let file = local
            .clone()
            .unwrap_or_else(|| PathBuf::from(&self.config.path));
        let (config, format, index_dir, spec, source_id) = (
            self.config.clone(),
            self.format,
            self.index_dir.clone(),
            self.table.spec().clone(),
            source.clone(),
        );
        let built = tokio::task::spawn_blocking(move || {
            dimension::build(&BuildRequest {
                name: &config.name,
                source: &source_id,
                file: &file,
                format,
                spec: &spec,
                mode: config.mode,
                memory_budget: usize::try_from(config.memory_budget_mb.saturating_mul(1 << 20))
                    .unwrap_or(usize::MAX),
                index_dir: &index_dir,
            })
        })
        .await
        .map_err(|e| DimensionError::store(&self.index_dir, e));
        if let Some(local) = local {
            let _ = std::fs::remove_file(local);
        }
        built?
    }

    /// The current version of the file.
    async fn identify(&self, stores: &Stores) -> Result<SourceId, DimensionError> {
        let path = &self.config.path;
        let Some((bucket, key)) = split_s3(path)? else {
            return SourceId::local(path);
        };
        let (size, version) = stores
            .head(bucket, key)
            .await
            .map_err(|e| file_error(path, e))?;
        Ok(SourceId {
            location: path.clone(),
            size,
            version,
        })
    }

    /// Streams the S3 object into this dimension's index directory.
    async fn download(&self, stores: &Stores) -> Result<PathBuf, DimensionError> {
        let path = &self.config.path;
        let Some((bucket, key)) = split_s3(path)? else {
            return Ok(PathBuf::from(path));
        };
        tokio::fs::create_dir_all(&self.index_dir)
            .await
            .map_err(|e| DimensionError::io(self.index_dir.display(), e))?;
        let target = self
            .index_dir
            .join(format!("download-{}", std::process::id()));
        let mut chunks = stores
            .get(bucket, key)
            .await
            .map_err(|e| file_error(path, e))?;
        let mut file = tokio::fs::File::create(&target)
            .await
            .map_err(|e| DimensionError::io(target.display(), e))?;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| file_error(path, e))?;
            file.write_all(&chunk)
                .await
                .map_err(|e| DimensionError::io(target.display(), e))?;
        }
        file.flush()
            .await
            .map_err(|e| DimensionError::io(target.display(), e))?;
        Ok(target)
    }
}

fn file_error(path: &str, problem: impl std::fmt::Display) -> DimensionError {
    DimensionError::File {
        path: path.to_owned(),
        problem: problem.to_string(),
    }
}

/// `(bucket, key)` of an `s3://` path; `None` for a local one.
fn split_s3(path: &str) -> Result<Option<(&str, &str)>, DimensionError> {
    let Some(rest) = path.strip_prefix("s3://") else {
        return Ok(None);
    };
    rest.split_once('/')
        .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
        .map(Some)
        .ok_or_else(|| file_error(path, "expected s3://bucket/key"))
}
