//! The `elasticsearch` sink (Elasticsearch and OpenSearch): one document per
//! item, `_id` from its key, written with `_bulk` and external versions
//! (`version_type=external_gte`) so that replays and snapshot overlaps
//! never regress a document; deletes are versioned deletes or tombstones.

mod bulk;
mod client;
mod config;
mod document;
mod numbers;
mod version;
mod writer;

pub use config::{DeleteMode, ElasticsearchSinkConfig, Routing, SigV4Service};
pub use document::{document_id, index_name};
pub use numbers::{is_exact, restyle_numbers, NumberStyle};
pub use version::es_version;
pub use writer::ElasticsearchSink;
