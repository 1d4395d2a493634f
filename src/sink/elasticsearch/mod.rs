//! The `elasticsearch` sink (Elasticsearch and OpenSearch): one document per
//! item, `_id` from its key, written with `_bulk` and external versions
//! (`version_type=external_gte`) so that replays and snapshot overlaps
//! never regress a document; deletes are versioned deletes or tombstones.
//! With `mapping = "auto"` every attribute gets an explicit typed field
//! (see `auto_mapping`).

mod auto_mapping;
mod bulk;
mod client;
mod config;
mod document;
mod kinds;
mod numbers;
mod version;
mod writer;

pub use auto_mapping::MappingError;
pub use config::{
    DeleteMode, ElasticsearchSinkConfig, MappingMode, Routing, SigV4Service, DEFAULT_SCHEMA_INDEX,
};
pub use document::{document_id, index_name, DocumentIdError};
pub use kinds::{suffix, ElasticsearchKinds, FieldType, KEYWORD_IGNORE_ABOVE};
pub use numbers::{is_exact, restyle_numbers, NumberStyle};
pub use version::es_version;
pub use writer::ElasticsearchSink;
