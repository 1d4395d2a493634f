//! A fault-injecting HTTP/1.1 reverse proxy in front of a real OpenSearch-API
//! server: requests are forwarded unchanged unless the current [`Mode`]
//! throttles `_bulk` requests as a whole or rejects some of their items (for
//! back-pressure the server cannot produce on demand).

use std::convert::Infallible;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

/// What the proxy does with `_bulk` requests (other requests are always
/// forwarded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward unchanged.
    Forward,
    /// Answer HTTP 429 with an `es_rejected_execution_exception` body,
    /// without forwarding.
    TooManyRequests,
    /// Forward, but reject the `every`-th, 2·`every`-th, … item of each
    /// request (counted from 1 within the request): those items are not
    /// sent upstream and come back as per-item 429 failures in their place
    /// of `items`, with `errors: true`. With `every: 1` nothing gets through.
    RejectItems {
        /// The period of rejected items (at least 1).
        every: u64,
    },
}

/// A running proxy on `127.0.0.1`; it stops accepting connections when dropped.
pub struct HttpFaultProxy {
    url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    mode: Mutex<Mode>,
    bulk_requests: AtomicU64,
    rejected_items: AtomicU64,
}

impl HttpFaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) in
    /// [`Mode::Forward`], on a free port. Must be called inside a Tokio runtime.
    pub fn start(upstream: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            mode: Mutex::new(Mode::Forward),
            bulk_requests: AtomicU64::new(0),
            rejected_items: AtomicU64::new(0),
        });
        let accepting = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let shared = Arc::clone(&accepting);
                let service = hyper::service::service_fn(move |request| {
                    let shared = Arc::clone(&shared);
                    async move { Ok::<_, Infallible>(answer(&shared, request).await) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service),
                );
            }
        });
        Self { url, shared, task }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Switches the mode; requests already being answered keep the old one.
    pub fn set_mode(&self, mode: Mode) {
        assert!(
            !matches!(mode, Mode::RejectItems { every: 0 }),
            "RejectItems needs every >= 1"
        );
        *self.shared.mode.lock().expect("proxy mode") = mode;
    }

    /// How many `_bulk` requests reached the proxy (in any mode).
    pub fn bulk_requests(&self) -> u64 {
        self.shared.bulk_requests.load(Ordering::Relaxed)
    }

    /// How many bulk items were withheld from upstream and answered with a
    /// per-item 429 ([`Mode::RejectItems`]).
    pub fn rejected_items(&self) -> u64 {
        self.shared.rejected_items.load(Ordering::Relaxed)
    }
}

impl Drop for HttpFaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Answer = Response<Full<Bytes>>;

fn json_response(status: u16, body: &Value) -> Answer {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

/// Headers not copied between the two connections (`accept-encoding` is
/// dropped so that the upstream answer stays plain and can be edited).
const NOT_FORWARDED: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "accept-encoding",
];

async fn answer(shared: &Shared, request: Request<Incoming>) -> Answer {
    let (parts, body) = request.into_parts();
    let mut body = match body.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(err) => return json_response(400, &json!({"error": err.to_string()})),
    };
    let path = parts.uri.path();
    let mode = *shared.mode.lock().expect("proxy mode");
    let mut headers = parts.headers;
    // Rejected items withheld from upstream, to splice into its answer.
    let mut rejected = Vec::new();
    if path.rsplit('/').next() == Some("_bulk") {
        shared.bulk_requests.fetch_add(1, Ordering::Relaxed);
        match mode {
            Mode::Forward => {}
            Mode::TooManyRequests => {
                let reason = "rejected execution of bulk request (injected by the test proxy)";
                let error = json!({"type": "es_rejected_execution_exception", "reason": reason});
                let body = json!({"error": {"root_cause": [error.clone()], "type": error["type"],
                    "reason": reason}, "status": 429});
                return json_response(429, &body);
            }
            Mode::RejectItems { every } => {
                // Items are edited in plain text, and forwarded so.
                if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
                    let mut plain = Vec::new();
                    let mut decoder = flate2::read::GzDecoder::new(body.as_slice());
                    if let Err(err) = decoder.read_to_end(&mut plain) {
                        return json_response(400, &json!({"error": format!("gzip: {err}")}));
                    }
                    body = plain;
                    headers.remove("content-encoding");
                }
                // `/{index}/_bulk` names the default index of its actions.
                let default_index = path.strip_suffix("/_bulk").unwrap_or("").trim_matches('/');
                let (kept, dropped) = split_bulk(&body, default_index, every);
                let count = dropped.len() as u64;
                shared.rejected_items.fetch_add(count, Ordering::Relaxed);
                if kept.is_empty() && !dropped.is_empty() {
                    // An empty bulk is a 400 upstream: answer it here.
                    let items: Vec<Value> = dropped.into_iter().map(|(_, item)| item).collect();
                    return json_response(200, &json!({"took": 0, "errors": true, "items": items}));
                }
                body = kept;
                rejected = dropped;
            }
        }
    }

    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path_and_query}", shared.upstream);
    let mut forward = shared.http.request(parts.method, url);
    for (name, value) in headers.iter() {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            forward = forward.header(name, value);
        }
    }
    let response = match forward.body(body).send().await {
        Ok(response) => response,
        Err(err) => return json_response(502, &json!({"error": err.to_string()})),
    };
    let mut builder = Response::builder().status(response.status());
    for (name, value) in response.headers() {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            builder = builder.header(name, value);
        }
    }
    let mut bytes = response.bytes().await.unwrap_or_default();
    if !rejected.is_empty() {
        // A whole-request failure upstream (no `items`) is passed on as is.
        if let Ok(mut answer) = serde_json::from_slice::<Value>(&bytes) {
            if let Some(items) = answer["items"].as_array_mut() {
                // Ascending positions: each lands where it was in the request.
                for (position, item) in rejected {
                    items.insert(position.min(items.len()), item);
                }
                answer["errors"] = json!(true);
                bytes = Bytes::from(answer.to_string());
            }
        }
    }
    builder.body(Full::new(bytes)).expect("response")
}

/// Splits an NDJSON bulk body into the bytes to forward and the rejected
/// items: `(position in the request, per-item 429 answer)`.
fn split_bulk(body: &[u8], default_index: &str, every: u64) -> (Vec<u8>, Vec<(usize, Value)>) {
    let mut kept = Vec::new();
    let mut rejected = Vec::new();
    let mut lines = body
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty());
    let mut position = 0;
    while let Some(action_line) = lines.next() {
        // `{"<op>": {"_index": .., "_id": .., ..}}`
        let action: Value = serde_json::from_slice(action_line).unwrap_or_default();
        let (op, meta) = match action.as_object().and_then(|o| o.iter().next()) {
            Some((op, meta)) => (op.clone(), meta.clone()),
            None => ("index".to_owned(), Value::Null),
        };
        // index, create and update carry a source line; delete does not.
        let source = if op == "delete" { None } else { lines.next() };
        position += 1;
        if position % every == 0 {
            let index = meta.get("_index").cloned();
            let result = json!({
                "_index": index.unwrap_or_else(|| json!(default_index)),
                "_id": meta.get("_id").cloned().unwrap_or_default(),
                "status": 429,
                "error": {"type": "es_rejected_execution_exception", "reason": "rejected execution"},
            });
            rejected.push(((position - 1) as usize, json!({ op: result })));
        } else {
            for line in std::iter::once(action_line).chain(source) {
                kept.extend_from_slice(line);
                if !line.ends_with(b"\n") {
                    kept.push(b'\n');
                }
            }
        }
    }
    (kept, rejected)
}
