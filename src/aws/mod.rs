//! Reaching AWS, shared by sources and sinks: the `[aws]` section, cached
//! credentials from the standard chain, and SigV4 signing of requests the
//! engine sends itself.

pub mod credentials;
pub mod sign;

use serde::Deserialize;

/// How to reach AWS. Credentials come from the standard AWS chain
/// (environment, profile, web identity, container, instance metadata).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Region; defaults to the AWS chain's (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Endpoint for both DynamoDB and DynamoDB Streams, for local stand-ins
    /// such as DynamoDB Local (`http://127.0.0.1:8000`).
    pub endpoint_url: Option<String>,
    /// Named profile from the shared AWS config files.
    pub profile: Option<String>,
    /// Endpoint for Kinesis Data Streams, for local stand-ins such as
    /// kinesalite; default: the region's.
    pub kinesis_endpoint_url: Option<String>,
}
