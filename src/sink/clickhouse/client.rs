//! ClickHouse's HTTP interface: queries and (gzipped) TabSeparated inserts, with
//! errors classified by what retrying can do about them.

use std::io::Write as _;
use std::time::Duration;

use flate2::write::GzEncoder;

/// What the sink does about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Retry the same insert after a backoff.
    Transient,
    /// The rows hold data the table cannot take: find the bad rows, dead-letter them.
    Data,
    /// Retrying cannot help (credentials, missing table, bad SQL): stop.
    Fatal,
}

/// A failed request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ClickHouseError {
    /// How to handle it.
    pub kind: ErrorKind,
    /// ClickHouse's error code, when it sent one.
    pub code: Option<u32>,
    /// What happened, with the server's message.
    pub message: String,
}

/// Classifies a ClickHouse error code.
pub fn classify(code: u32) -> ErrorKind {
    match code {
        // TOO_MANY_PARTS, MEMORY_LIMIT_EXCEEDED, TOO_MANY_SIMULTANEOUS_QUERIES:
        // the server is overloaded; the same insert succeeds later.
        252 | 241 | 202 => ErrorKind::Transient,
        // TIMEOUT_EXCEEDED, SOCKET_TIMEOUT, NETWORK_ERROR, UNKNOWN_STATUS_OF_INSERT,
        // TABLE_IS_READ_ONLY (replica lost its keeper session), KEEPER_EXCEPTION,
        // ALL_CONNECTION_TRIES_FAILED: infrastructure trouble, retry.
        159 | 209 | 210 | 319 | 242 | 999 | 279 => ErrorKind::Transient,
        // CANNOT_PARSE_TEXT, CANNOT_PARSE_QUOTED_STRING, CANNOT_PARSE_INPUT_ASSERTION_FAILED,
        // CANNOT_PARSE_DATE, CANNOT_PARSE_DATETIME, TYPE_MISMATCH, ARGUMENT_OUT_OF_BOUND,
        // CANNOT_CONVERT_TYPE, CANNOT_PARSE_NUMBER, INCORRECT_DATA, DECIMAL_OVERFLOW,
        // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE: a row is bad; the rest of the batch is fine.
        6 | 26 | 27 | 38 | 41 | 53 | 69 | 70 | 72 | 117 | 407 | 321 => ErrorKind::Data,
        // Everything else (UNKNOWN_TABLE 60, UNKNOWN_DATABASE 81, authentication 192/193/516,
        // ACCESS_DENIED 497, NO_SUCH_COLUMN_IN_TABLE 16, syntax 62, …) needs a person.
        _ => ErrorKind::Fatal,
    }
}

/// The error code in a ClickHouse error body (`Code: 252, e.displayText() = …` or `Code: 252. DB::Exception: …`).
fn parse_code(body: &str) -> Option<u32> {
    let rest = body.split("Code: ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A client of one server.
pub struct ClickHouseClient {
    http: reqwest::Client,
    url: String,
    user: String,
    password: Option<String>,
    compress: bool,
}

impl ClickHouseClient {
    /// A client for `url` (http or https) authenticating as `user`; inserts
    /// are gzipped when `compress` is set.
    pub fn new(
        url: &str,
        user: &str,
        password: Option<String>,
        timeout: Duration,
        compress: bool,
    ) -> Result<Self, ClickHouseError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|err| ClickHouseError {
                kind: ErrorKind::Fatal,
                code: None,
                message: format!("cannot build the HTTP client: {err}"),
            })?;
        Ok(Self {
            http,
            url: url.trim_end_matches('/').to_owned(),
            user: user.to_owned(),
            password,
            compress,
        })
    }

    /// The server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs a statement; returns the response body.
    pub async fn query(&self, sql: &str) -> Result<String, ClickHouseError> {
        let request = self
            .http
            .post(format!("{}/", self.url))
            .body(sql.to_owned());
        self.send(request, sql).await
    }

    /// Inserts TabSeparated rows holding `columns` (backquoted, comma-separated)
    /// into `table` (qualified), gzip-compressed when the client compresses.
    pub async fn insert(
        &self,
        table: &str,
        columns: &str,
        rows: bytes::Bytes,
    ) -> Result<(), ClickHouseError> {
        let statement = format!("INSERT INTO {table} ({columns}) FORMAT TabSeparated");
        let request = self
            .http
            .post(format!("{}/", self.url))
            .query(&[("query", statement.as_str())]);
        let request = if self.compress {
            let mut encoder = GzEncoder::new(
                Vec::with_capacity(rows.len() / 4),
                flate2::Compression::fast(),
            );
            let body = encoder
                .write_all(&rows)
                .and_then(|()| encoder.finish())
                .map_err(|err| ClickHouseError {
                    kind: ErrorKind::Fatal,
                    code: None,
                    message: format!("cannot compress the insert: {err}"),
                })?;
            request.header("Content-Encoding", "gzip").body(body)
        } else {
            request.body(rows)
        };
        self.send(request, &statement).await.map(|_| ())
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<String, ClickHouseError> {
        let request = request.basic_auth(&self.user, self.password.as_deref());
        let response = request.send().await.map_err(|err| ClickHouseError {
            kind: ErrorKind::Transient,
            code: None,
            message: format!("{}: {}", self.url, crate::error_text::with_causes(&err)),
        })?;
        let status = response.status();
        let body = response.text().await.map_err(|err| ClickHouseError {
            kind: ErrorKind::Transient,
            code: None,
            message: format!(
                "{}: reading the response: {}",
                self.url,
                crate::error_text::with_causes(&err)
            ),
        })?;
        if status.is_success() {
            return Ok(body);
        }
        let code = parse_code(&body);
        let kind = match code {
            Some(code) => classify(code),
            None if status.is_server_error() => ErrorKind::Transient,
            None => ErrorKind::Fatal,
        };
        let short: String = what.chars().take(120).collect();
        Err(ClickHouseError {
            kind,
            code,
            message: format!(
                "{short}: HTTP {}: {}",
                status.as_u16(),
                body.trim().lines().next().unwrap_or_default()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_from_old_and_new_bodies() {
        assert_eq!(
            parse_code("Code: 27, e.displayText() = DB::Exception: Cannot parse input"),
            Some(27)
        );
        assert_eq!(
            parse_code("Code: 252. DB::Exception: Too many parts (300)"),
            Some(252)
        );
        assert_eq!(parse_code("<html>"), None);
    }

    #[test]
    fn codes_are_classified() {
        assert_eq!(classify(252), ErrorKind::Transient);
        assert_eq!(classify(241), ErrorKind::Transient);
        assert_eq!(classify(27), ErrorKind::Data);
        assert_eq!(classify(117), ErrorKind::Data);
        assert_eq!(classify(60), ErrorKind::Fatal);
        assert_eq!(classify(516), ErrorKind::Fatal);
    }
}
