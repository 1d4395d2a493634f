//! Reaching AWS, shared by sources and sinks: the `[aws]` section, cached
//! credentials from the standard chain, and SigV4 signing of requests the
//! engine sends itself.

pub mod credentials;
pub mod sign;

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{tls, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use serde::Deserialize;

/// Starts an SDK configuration (latest behavior version) whose HTTPS
/// client is rustls with ring, as every other client of the engine.
pub fn config_loader() -> aws_config::ConfigLoader {
    crate::tls::install_default_provider();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client())
}

/// The SDKs' default HTTPS client (hyper, proxy settings from the
/// environment) with ring in place of aws-lc.
fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
        let mut builder = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ));
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(ProxyConfig::from_env()));
        builder.build()
    })
}

/// How to reach AWS. Credentials come from the standard AWS chain
/// (environment, profile, web identity, container, instance metadata).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
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
