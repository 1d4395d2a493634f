//! A fault-injecting HTTP proxy in front of a real AWS-API stand-in
//! (DynamoDB Local, kinesalite): every request is forwarded unchanged unless
//! a rule answers it with an AWS-style error, stalls it or resets the
//! connection (faults the stand-ins cannot produce on demand: throttling,
//! expired iterators, server errors), or an emulated trim horizon turns it
//! into `TrimmedDataAccessException`. It logs when each request arrived, so
//! tests can measure retry rates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// An error the proxy answers instead of forwarding.
#[derive(Debug, Clone)]
pub struct Fault {
    /// HTTP status.
    pub status: u16,
    /// The AWS error type (`__type`), e.g. `ExpiredIteratorException`;
    /// empty for a bare status with a non-JSON body, as a load balancer
    /// in front of the service answers.
    pub error_type: String,
}

impl Fault {
    /// A fault with `status` and AWS error type `error_type`.
    pub fn new(status: u16, error_type: &str) -> Self {
        Self {
            status,
            error_type: error_type.to_owned(),
        }
    }
}

/// What the proxy does with one request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Forward it (subject to the emulated trim horizon).
    Forward,
    /// Answer with an AWS-style error instead of forwarding.
    Fail(Fault),
    /// Hold the request this long, then forward it (a stall longer than
    /// the client's timeout makes the client give up first).
    Stall(Duration),
    /// Close the connection without answering (a connection reset).
    Reset,
}

/// What a rule sees of a request: the operation (from `X-Amz-Target`,
/// e.g. `Kinesis_20131202.GetRecords`), how many requests of that
/// operation came before it, and its body.
pub struct Seen<'a> {
    /// The operation.
    pub target: &'a str,
    /// Requests of this operation before this one.
    pub index: u64,
    /// The request body (JSON for these APIs).
    pub body: &'a [u8],
}

type Rule = dyn Fn(&Seen<'_>) -> Action + Send + Sync;

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT` of the proxy.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) that answers a
    /// request with the fault `rule` returns for it, else forwards it.
    pub async fn start(
        upstream: &str,
        rule: impl Fn(&Seen<'_>) -> Option<Fault> + Send + Sync + 'static,
    ) -> Self {
        Self::with_actions(upstream, move |seen| match rule(seen) {
            Some(fault) => Action::Fail(fault),
            None => Action::Forward,
        })
        .await
    }

    /// Starts a proxy to `upstream` that does with each request what
    /// `rule` says.
    pub async fn with_actions(
        upstream: &str,
        rule: impl Fn(&Seen<'_>) -> Action + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            rule: Box::new(rule),
            counts: Mutex::new(std::collections::HashMap::new()),
            log: Mutex::new(Vec::new()),
            injected: AtomicU64::new(0),
            trim_horizon: Mutex::new(None),
            trimmed_away: AtomicU64::new(0),
        });
        let accepting = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, Arc::clone(&accepting)));
            }
        });
        Self { url, shared, task }
    }

    /// How many faults (errors, stalls, resets, emulated trims) were
    /// injected so far.
    pub fn injected(&self) -> u64 {
        self.shared.injected.load(Ordering::Relaxed)
    }

    /// Emulates a stream trimmed up to `horizon` (a sequence number):
    /// GetShardIterator after or at an older position answers
    /// `TrimmedDataAccessException`, and GetRecords answers carry no record
    /// below it. `None` trims nothing.
    pub fn set_trim_horizon(&self, horizon: Option<u128>) {
        *self.shared.trim_horizon.lock().expect("trim horizon") = horizon;
    }

    /// Records GetRecords answers left out because they were below the
    /// emulated trim horizon.
    pub fn trimmed_away(&self) -> u64 {
        self.shared.trimmed_away.load(Ordering::Relaxed)
    }

    /// When each request whose operation ends with `suffix` (e.g.
    /// `.GetRecords`) arrived, in order.
    pub fn arrivals(&self, suffix: &str) -> Vec<Instant> {
        let log = self.shared.log.lock().expect("request log");
        log.iter()
            .filter(|(target, _)| target.ends_with(suffix))
            .map(|(_, at)| *at)
            .collect()
    }

    /// The most requests ending with `suffix` that arrived within any one
    /// second at or after `since`.
    pub fn peak_per_second(&self, suffix: &str, since: Instant) -> usize {
        let times: Vec<Instant> = self
            .arrivals(suffix)
            .into_iter()
            .filter(|at| *at >= since)
            .collect();
        let mut first = 0;
        let mut peak = 0;
        for (last, at) in times.iter().enumerate() {
            while at.duration_since(times[first]) >= Duration::from_secs(1) {
                first += 1;
            }
            peak = peak.max(last + 1 - first);
        }
        peak
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
    counts: Mutex<std::collections::HashMap<String, u64>>,
    log: Mutex<Vec<(String, Instant)>>,
    injected: AtomicU64,
    trim_horizon: Mutex<Option<u128>>,
    trimmed_away: AtomicU64,
}

impl Shared {
    fn horizon(&self) -> Option<u128> {
        *self.trim_horizon.lock().expect("trim horizon")
    }
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

/// An answer: status, content type and body; `None` closes the connection.
type Answer = Option<(u16, String, Vec<u8>)>;

async fn serve(socket: TcpStream, shared: Arc<Shared>) {
    let mut reader = BufReader::new(socket);
    while let Some(request) = read_request(&mut reader).await {
        let Some((status, content_type, body)) = answer(&shared, request).await else {
            return; // dropping the socket resets the connection
        };
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

async fn answer(shared: &Shared, request: Request) -> Answer {
    let target = request.header("x-amz-target").unwrap_or("").to_owned();
    let index = {
        let mut counts = shared.counts.lock().expect("proxy counts");
        let count = counts.entry(target.clone()).or_insert(0);
        *count += 1;
        *count - 1
    };
    shared
        .log
        .lock()
        .expect("request log")
        .push((target.clone(), Instant::now()));
    let action = (shared.rule)(&Seen {
        target: &target,
        index,
        body: &request.body,
    });
    match action {
        Action::Forward => {}
        Action::Fail(fault) => {
            shared.injected.fetch_add(1, Ordering::Relaxed);
            return Some(error_answer(&fault));
        }
        Action::Stall(duration) => {
            shared.injected.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(duration).await;
        }
        Action::Reset => {
            shared.injected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    }
    if let Some(horizon) = shared.horizon() {
        if target.ends_with(".GetShardIterator") && starts_below(&request.body, horizon) {
            shared.injected.fetch_add(1, Ordering::Relaxed);
            return Some(error_answer(&Fault::new(400, "TrimmedDataAccessException")));
        }
    }
    let (status, content_type, body) = forward(shared, &request).await;
    match shared.horizon() {
        Some(horizon) if status == 200 && target.ends_with(".GetRecords") => {
            let (body, dropped) = trim_records(body, horizon);
            shared.trimmed_away.fetch_add(dropped, Ordering::Relaxed);
            Some((status, content_type, body))
        }
        _ => Some((status, content_type, body)),
    }
}

fn error_answer(fault: &Fault) -> (u16, String, Vec<u8>) {
    if fault.error_type.is_empty() {
        return (
            fault.status,
            "text/html".into(),
            b"<html>Bad Gateway</html>".to_vec(),
        );
    }
    let body =
        serde_json::json!({"__type": fault.error_type, "message": "injected by the test proxy"});
    (
        fault.status,
        "application/x-amz-json-1.1".into(),
        body.to_string().into_bytes(),
    )
}

/// The sequence number of a record in a GetRecords answer (DynamoDB
/// Streams nests it under `dynamodb`, Kinesis does not).
fn record_sequence(record: &Value) -> Option<u128> {
    record["dynamodb"]["SequenceNumber"]
        .as_str()
        .or_else(|| record["SequenceNumber"].as_str())
        .and_then(|s| s.parse().ok())
}

/// True when a GetShardIterator request starts after or at a position
/// below `horizon`.
fn starts_below(body: &[u8], horizon: u128) -> bool {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let by_position = matches!(
        request["ShardIteratorType"].as_str(),
        Some("AFTER_SEQUENCE_NUMBER" | "AT_SEQUENCE_NUMBER")
    );
    let sequence = request["SequenceNumber"]
        .as_str()
        .or_else(|| request["StartingSequenceNumber"].as_str())
        .and_then(|s| s.parse::<u128>().ok());
    by_position && sequence.is_some_and(|sequence| sequence < horizon)
}

/// The GetRecords answer without its records below `horizon`, and how
/// many were left out.
fn trim_records(body: Vec<u8>, horizon: u128) -> (Vec<u8>, u64) {
    let Ok(mut answer) = serde_json::from_slice::<Value>(&body) else {
        return (body, 0);
    };
    let Some(records) = answer["Records"].as_array_mut() else {
        return (body, 0);
    };
    let before = records.len();
    records.retain(|record| record_sequence(record).is_none_or(|sequence| sequence >= horizon));
    let dropped = (before - records.len()) as u64;
    (answer.to_string().into_bytes(), dropped)
}

async fn forward(shared: &Shared, request: &Request) -> (u16, String, Vec<u8>) {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).expect("method");
    let mut forward = shared
        .http
        .request(method, format!("{}{}", shared.upstream, request.path));
    for (name, value) in &request.headers {
        if name != "host" && name != "content-length" {
            forward = forward.header(name, value);
        }
    }
    match forward.body(request.body.clone()).send().await {
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
