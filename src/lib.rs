//! dynamo-cdc: change-data-capture for Amazon DynamoDB.
//!
//! Sources read DynamoDB Streams; the coordinator tracks shard lineage and
//! checkpoints; decoded changes flow to sinks that acknowledge durable
//! writes, and a shard's checkpoint only ever moves past acknowledged
//! changes. The guarantees this gives are listed in the book (docs/src/guarantees.md).

#![warn(missing_docs)]

pub mod app;
pub mod aws;
pub mod backoff;
pub mod cli;
pub mod clock;
pub mod config;
pub mod coordinator;
pub mod dead_letter;
pub mod decode;
pub mod dimension;
pub mod error_text;
pub mod future;
pub mod hash;
pub mod json_schema;
pub mod metric_names;
pub mod model;
pub mod observe;
pub mod schema;
pub mod secret;
pub mod sink;
pub mod source;
pub mod stats;
pub mod tls;
pub mod transform;
