//! Kinesis Data Streams carrying DynamoDB changes (a table's Kinesis
//! streaming destination), behind the shard-source seam. One stream may
//! carry several tables; records are routed by `tableName`.

mod destination;
mod page;
mod shards;

pub use destination::check_destination;

pub use page::KinesisPage;
pub use shards::KinesisShards;

use super::streams::StreamsApi;

/// A Kinesis client with `api`'s credentials, region and timeouts:
/// `endpoint` overrides the region's endpoint (never the DynamoDB one).
pub fn client(api: &StreamsApi, endpoint: Option<&str>) -> aws_sdk_kinesis::Client {
    let mut builder = aws_sdk_kinesis::config::Builder::from(api.sdk_config());
    builder.set_endpoint_url(endpoint.map(str::to_owned));
    aws_sdk_kinesis::Client::from_conf(builder.build())
}
