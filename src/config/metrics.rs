//! `[metrics]`: the HTTP endpoint that serves Prometheus metrics and the
//! health probes.

use std::net::SocketAddr;

use serde::Deserialize;

/// The `[metrics]` section.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where to serve `/metrics`, `/healthz` and `/readyz`, for example
    /// `"127.0.0.1:9464"` (`"0.0.0.0:9464"` in a container). Unset (the
    /// default): no endpoint, so that several workers on one host and
    /// one-off commands never compete for a port.
    pub listen: Option<SocketAddr>,
}
