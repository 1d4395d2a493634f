//! The integration tests, one module per area, linked into one test binary
//! (one link of the dependency tree instead of one per file). `common` holds
//! the shared helpers; scripts/test.sh starts the servers they talk to.

mod common;

mod aws_faults;
mod cli;
mod clickhouse_modern;
mod clickhouse_sink;
mod convergence;
mod crash_safety;
mod decode_records;
mod deploy_recipes;
mod disk_full;
mod docs_examples;
mod docs_reference;
mod elasticsearch_auto;
mod elasticsearch_sink;
mod elasticsearch_snapshot;
mod enrichment;
mod failover;
mod first_start;
mod fuzz_regressions;
mod iam_policies;
mod kafka_exactly_once;
mod kafka_flink;
mod kafka_harness;
mod kafka_sink;
mod kcl_import;
mod kinesis_forwarder;
mod kinesis_source;
mod lease_snapshot;
mod lease_spread;
mod lease_table;
mod leases;
mod loaders_side_by_side;
mod metrics;
mod opensearch_harness;
mod parquet_auto;
mod poison_records;
mod postgres_overlap;
mod postgres_sink;
mod postgres_tls;
mod real_fixtures;
mod replay;
mod s3_sink;
mod schema_infer;
mod secrets;
mod sink_outages;
mod snapshot;
mod soak;
mod staged_pipeline;
mod transform_stage;
mod ttl_latest_trim;
mod typed_columns;
mod typed_columns_lease;
