//! The schema history of `columns = "auto"` Parquet files: one small JSON
//! object per column added or widened, under
//! `<prefix>_schema/<table>/<column>/<from>.<to>.json` beside the data.
//!
//! The name holds the change itself (column, kind before, kind after) and
//! nothing else, so workers that race to record the same change write the
//! same object, and no change is ever lost to a read-modify-write race.
//! Data keys are `<prefix><table>/dt=…`; table names cannot hold `=`, so a
//! `_schema/<table>/` key is never a data file, and no notice is ever
//! sent for one (loaders only read what notices announce).

use std::sync::Arc;

use futures_util::StreamExt as _;
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::{ObjectStore as _, ObjectStoreExt as _, PutPayload};

use crate::schema::{ColumnKind, SchemaEvent};

/// The folder of the history, below the sink's prefix.
pub const SCHEMA_FOLDER: &str = "_schema";

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Listing the history's objects failed.
    #[error("listing s3://{bucket}/{prefix}: {source}")]
    List {
        /// Bucket.
        bucket: String,
        /// Listed prefix.
        prefix: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// Reading or writing one object failed.
    #[error("{action} s3://{bucket}/{key}: {source}")]
    Object {
        /// `get` or `put`.
        action: &'static str,
        /// Bucket.
        bucket: String,
        /// Object key.
        key: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// An event could not be written as JSON.
    #[error("encoding the schema event for s3://{bucket}/{key}: {source}")]
    Encode {
        /// Bucket.
        bucket: String,
        /// Object key.
        key: String,
        /// What failed.
        source: serde_json::Error,
    },
    /// An object holds something other than a schema event.
    #[error("s3://{bucket}/{key} is not a schema event this version can read: {source}")]
    Malformed {
        /// Bucket.
        bucket: String,
        /// Object key.
        key: String,
        /// What did not parse.
        source: serde_json::Error,
    },
}

/// The history objects of one sink (bucket and prefix).
#[derive(Clone)]
pub struct SchemaObjects {
    store: Arc<AmazonS3>,
    bucket: String,
    prefix: String,
}

/// `decimal(6)` → `decimal6`: a kind as a key segment.
fn segment(kind: Option<ColumnKind>) -> String {
    match kind {
        None => "new".to_owned(),
        Some(kind) => kind
            .to_string()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect(),
    }
}

/// The key of `event`'s object, given the sink's key prefix.
pub fn event_key(prefix: &str, event: &SchemaEvent) -> String {
    format!(
        "{prefix}{SCHEMA_FOLDER}/{}/{}/{}.{}.json",
        event.table,
        event.column,
        segment(event.from),
        segment(Some(event.to))
    )
}

impl SchemaObjects {
    /// The history under `prefix` (the sink's `prefix`, as data keys use it).
    pub fn new(store: Arc<AmazonS3>, bucket: &str, prefix: &str) -> Self {
        Self {
            store,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    /// Writes `event`'s object (the same key for the same change).
    pub async fn record(&self, event: &SchemaEvent) -> Result<(), HistoryError> {
        let key = event_key(&self.prefix, event);
        let body = serde_json::to_vec_pretty(event).map_err(|source| HistoryError::Encode {
            bucket: self.bucket.clone(),
            key: key.clone(),
            source,
        })?;
        self.store
            .put(&Path::from(key.as_str()), PutPayload::from(body))
            .await
            .map(|_| ())
            .map_err(|source| self.object_error("put", key, source))
    }

    /// Every recorded change of `table` (of every table when `None`),
    /// ordered by when it was recorded, then by version.
    pub async fn read(&self, table: Option<&str>) -> Result<Vec<SchemaEvent>, HistoryError> {
        let folder = match table {
            Some(table) => format!("{}{SCHEMA_FOLDER}/{table}/", self.prefix),
            None => format!("{}{SCHEMA_FOLDER}/", self.prefix),
        };
        let mut listing = self.store.list(Some(&Path::from(folder.as_str())));
        let mut events = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|source| HistoryError::List {
                bucket: self.bucket.clone(),
                prefix: folder.clone(),
                source,
            })?;
            let key = meta.location.to_string();
            // A table named `_schema` lands its data here too (`dt=…`).
            if !key.ends_with(".json") || key.contains("/dt=") {
                continue;
            }
            let body = self
                .store
                .get(&meta.location)
                .await
                .map_err(|source| self.object_error("get", key.clone(), source))?
                .bytes()
                .await
                .map_err(|source| self.object_error("get", key.clone(), source))?;
            let event = serde_json::from_slice::<SchemaEvent>(&body).map_err(|source| {
                HistoryError::Malformed {
                    bucket: self.bucket.clone(),
                    key: key.clone(),
                    source,
                }
            })?;
            events.push(event);
        }
        events.sort_by(|a, b| {
            (a.recorded_at_ms, a.version.len(), &a.version).cmp(&(
                b.recorded_at_ms,
                b.version.len(),
                &b.version,
            ))
        });
        Ok(events)
    }

    fn object_error(
        &self,
        action: &'static str,
        key: String,
        source: object_store::Error,
    ) -> HistoryError {
        HistoryError::Object {
            action,
            bucket: self.bucket.clone(),
            key,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_change_and_nothing_else() {
        let event = |from, to, version: &str, at| SchemaEvent {
            table: "orders".into(),
            attribute: "qty".into(),
            column: "qty".into(),
            from,
            to,
            sink_type: String::new(),
            version: version.into(),
            recorded_at_ms: at,
        };
        let added = event(None, ColumnKind::Int, "100", 1);
        assert_eq!(
            event_key("landing/", &added),
            "landing/_schema/orders/qty/new.int.json"
        );
        assert_eq!(
            event_key("", &event(None, ColumnKind::Int, "900", 7)),
            event_key("", &added).trim_start_matches("landing/"),
            "a racer's record of the same change is the same object"
        );
        let widened = event(
            Some(ColumnKind::Int),
            ColumnKind::Decimal { scale: 6 },
            "200",
            2,
        );
        assert_eq!(
            event_key("p/", &widened),
            "p/_schema/orders/qty/int.decimal6.json"
        );
        assert!(!event_key("p/", &widened).contains("/dt="));
    }
}
