//! A fault-injecting HTTP proxy in front of a real AWS-API stand-in: every
//! request is forwarded unchanged, except those a rule answers itself with
//! an AWS-style error (for faults the stand-in cannot produce on demand,
//! such as an expired shard iterator).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// An error the proxy answers instead of forwarding.
#[derive(Debug, Clone)]
pub struct Fault {
    /// HTTP status.
    pub status: u16,
    /// The AWS error type (`__type`), e.g. `ExpiredIteratorException`.
    pub error_type: String,
}

/// What a rule sees of a request: the operation (from `X-Amz-Target`,
/// e.g. `Kinesis_20131202.GetRecords`) and how many requests of that
/// operation came before it.
pub struct Seen<'a> {
    /// The operation.
    pub target: &'a str,
    /// Requests of this operation before this one.
    pub index: u64,
}

type Rule = dyn Fn(&Seen<'_>) -> Option<Fault> + Send + Sync;

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT` of the proxy.
    pub url: String,
    injected: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) applying `rule`.
    pub async fn start(
        upstream: &str,
        rule: impl Fn(&Seen<'_>) -> Option<Fault> + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let injected = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            rule: Box::new(rule),
            counts: std::sync::Mutex::new(std::collections::HashMap::new()),
            injected: Arc::clone(&injected),
        });
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, Arc::clone(&shared)));
            }
        });
        Self {
            url,
            injected,
            task,
        }
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    rule: Box<Rule>,
    counts: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    injected: Arc<AtomicU64>,
}

/// One request: method, path, headers (lower-case names) and body.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

async fn serve(socket: TcpStream, shared: Arc<Shared>) {
    let mut reader = BufReader::new(socket);
    while let Some(request) = read_request(&mut reader).await {
        let (status, content_type, body) = answer(&shared, request).await;
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let socket = reader.get_mut();
        if socket.write_all(head.as_bytes()).await.is_err()
            || socket.write_all(&body).await.is_err()
        {
            return;
        }
    }
}

async fn answer(shared: &Shared, request: Request) -> (u16, String, Vec<u8>) {
    let target = request.header("x-amz-target").unwrap_or("").to_owned();
    let index = {
        let mut counts = shared.counts.lock().expect("proxy counts");
        let count = counts.entry(target.clone()).or_insert(0);
        *count += 1;
        *count - 1
    };
    if let Some(fault) = (shared.rule)(&Seen {
        target: &target,
        index,
    }) {
        shared.injected.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::json!({"__type": fault.error_type, "message": "injected by the test proxy"});
        return (
            fault.status,
            "application/x-amz-json-1.1".into(),
            body.to_string().into_bytes(),
        );
    }
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).expect("method");
    let mut forward = shared
        .http
        .request(method, format!("{}{}", shared.upstream, request.path));
    for (name, value) in &request.headers {
        if name != "host" && name != "content-length" {
            forward = forward.header(name, value);
        }
    }
    match forward.body(request.body).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_owned();
            let body = response
                .bytes()
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            (status, content_type, body)
        }
        Err(err) => (502, "text/plain".into(), err.to_string().into_bytes()),
    }
}
