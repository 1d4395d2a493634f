//! The HTTP endpoint: `/metrics` in Prometheus text format (lag and
//! process gauges refreshed at each scrape), `/healthz` (the process and
//! its runtime answer) and `/readyz` (200 when ready, 503 with the reasons,
//! one a line: `starting: <what start-up waits for>` until it is done).
//! The engine starts it before anything that can wait.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::coordinator::AckTracker;
use crate::metric_names as names;
use crate::observe::process;
use crate::stats::Stats;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The address is taken or not ours.
    #[error("metrics.listen = {addr}: cannot listen: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The Prometheus recorder could not be installed.
    #[error("metrics: {0}")]
    Recorder(#[from] metrics_exporter_prometheus::BuildError),
}

/// What the endpoint serves from.
pub struct Endpoint {
    handle: PrometheusHandle,
    stats: Arc<Stats>,
    tracker: Arc<AckTracker>,
}

/// Batch write times, in seconds: from a few milliseconds to a minute.
const BATCH_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0,
];

/// Installs the process-wide Prometheus recorder, binds `addr` and serves
/// the probes of `stats` and the lag of `tracker`'s shards until `stop`.
/// Returns the bound address (port 0 picks a free one).
pub async fn start(
    addr: SocketAddr,
    stats: Arc<Stats>,
    tracker: Arc<AckTracker>,
    stop: CancellationToken,
) -> Result<SocketAddr, ObserveError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(names::SINK_BATCH_SECONDS.to_owned()),
            &BATCH_BUCKETS,
        )
        .and_then(|builder| {
            builder.set_buckets_for_metric(
                Matcher::Full(names::SINK_REQUEST_SECONDS.to_owned()),
                &BATCH_BUCKETS,
            )
        })
        .and_then(|builder| {
            builder.set_buckets_for_metric(
                Matcher::Full(names::KAFKA_TRANSACTION_SECONDS.to_owned()),
                &BATCH_BUCKETS,
            )
        })
        .map_err(ObserveError::Recorder)?
        .install_recorder()
        .map_err(ObserveError::Recorder)?;
    names::describe();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ObserveError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ObserveError::Bind { addr, source })?;
    let endpoint = Arc::new(Endpoint {
        handle,
        stats,
        tracker,
    });
    tokio::spawn(accept(listener, endpoint, stop));
    tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz");
    Ok(bound)
}

async fn accept(listener: TcpListener, endpoint: Arc<Endpoint>, stop: CancellationToken) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!("metrics endpoint: accept failed: {err}");
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        let endpoint = Arc::clone(&endpoint);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let endpoint = Arc::clone(&endpoint);
                async move { Ok::<_, Infallible>(endpoint.answer(&request)) }
            });
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("metrics endpoint: connection ended: {err}");
            }
        });
    }
}

impl Endpoint {
    fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        match request.uri().path() {
            "/metrics" => {
                self.stats.probes.lag.publish(&self.tracker, now_ms());
                process::publish();
                self.handle.run_upkeep();
                text(StatusCode::OK, self.handle.render())
            }
            "/healthz" => text(StatusCode::OK, "ok\n".to_owned()),
            "/readyz" => match self.stats.probes.health.readiness() {
                Ok(()) => text(StatusCode::OK, "ready\n".to_owned()),
                Err(not_ready) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{}\n", not_ready.0.join("\n")),
                ),
            },
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /metrics, /healthz or /readyz\n".to_owned(),
            ),
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
