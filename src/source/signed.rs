//! SigV4-signed AWS JSON requests whose bodies the engine parses itself:
//! GetRecords and Scan. The SDK's deserializers reject a whole page when an
//! item holds an untagged `{}` (which DynamoDB Local writes for nested empty
//! maps) and would build SDK values only to convert them again; reading the
//! body directly keeps one bad record from blocking a shard or a segment and
//! skips that copy.

use std::time::{Duration, SystemTime};

use crate::aws::credentials::CachedCredentials;
use crate::aws::sign::{signature_headers, SigningScope};
use crate::decode::{parse_page, RecordsPage};
use crate::source::SourceError;

const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// Signs and sends AWS JSON 1.0 requests to one endpoint.
pub struct SignedClient {
    http: reqwest::Client,
    endpoint: String,
    region: String,
    credentials: CachedCredentials,
}

impl SignedClient {
    /// A client for `endpoint` in `region` (signing name `dynamodb`, which
    /// DynamoDB and DynamoDB Streams share).
    pub fn new(
        endpoint: String,
        region: String,
        credentials: CachedCredentials,
        timeout: Duration,
    ) -> Result<Self, SourceError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .build()
            .map_err(|err| SourceError::Fatal {
                operation: "configure",
                message: format!("cannot build the HTTP client: {err}"),
            })?;
        Ok(Self {
            http,
            endpoint,
            region,
            credentials,
        })
    }

    /// Reads up to `limit` records at `iterator` (DynamoDB Streams GetRecords).
    pub async fn get_records(
        &self,
        iterator: &str,
        limit: u32,
    ) -> Result<RecordsPage, SourceError> {
        const OPERATION: &str = "GetRecords";
        let body = serde_json::json!({
            "ShardIterator": iterator,
            "Limit": limit,
        });
        let bytes = self
            .post(OPERATION, "DynamoDBStreams_20120810.GetRecords", &body)
            .await?;
        parse_page(Vec::from(bytes)).map_err(|err| retryable(OPERATION, err.to_string()))
    }

    /// Sends `body` as the `target` operation and returns the response body
    /// of a success; errors are classified by the service's error code.
    pub async fn post(
        &self,
        operation: &'static str,
        target: &str,
        body: &serde_json::Value,
    ) -> Result<bytes::Bytes, SourceError> {
        let fatal = |message: String| SourceError::Fatal { operation, message };
        let body = serde_json::to_vec(body)
            .map_err(|err| fatal(format!("cannot encode the request: {err}")))?;
        let credentials = self.credentials.get().await.map_err(fatal)?;
        let headers = [("content-type", CONTENT_TYPE), ("x-amz-target", target)];
        let scope = SigningScope {
            service: "dynamodb",
            region: &self.region,
            content_sha256_header: false,
        };
        let signature = signature_headers(
            "POST",
            &self.endpoint,
            &headers,
            &body,
            credentials,
            scope,
            SystemTime::now(),
        )
        .map_err(fatal)?;
        let mut request = self
            .http
            .post(&self.endpoint)
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", target);
        for (name, value) in signature {
            request = request.header(name, value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|err| retryable(operation, crate::error_text::with_causes(&err)))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| retryable(operation, crate::error_text::with_causes(&err)))?;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(service_error(operation, status.as_u16(), &bytes))
    }
}

fn retryable(operation: &'static str, message: String) -> SourceError {
    SourceError::Retryable { operation, message }
}

/// Maps an AWS JSON error body (`{"__type":"…#Code","message":"…"}`) to a [`SourceError`].
fn service_error(operation: &'static str, status: u16, body: &[u8]) -> SourceError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(rename = "__type", default)]
        kind: String,
        #[serde(alias = "Message", default)]
        message: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => {
            let code = parsed.kind.rsplit('#').next().unwrap_or_default();
            SourceError::from_code(operation, code, parsed.message, status)
        }
        Err(_) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            SourceError::from_code(
                operation,
                "HttpError",
                format!("HTTP {status}: {text}"),
                status,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_classified() {
        let expired = service_error(
            "GetRecords",
            400,
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ExpiredIteratorException","message":"Iterator expired"}"#,
        );
        assert!(
            matches!(expired, SourceError::ExpiredIterator { ref message, .. } if message == "Iterator expired")
        );
        let throttled = service_error(
            "GetRecords",
            400,
            br#"{"__type":"x#LimitExceededException","Message":"slow down"}"#,
        );
        assert!(throttled.is_retryable());
        let gateway = service_error("GetRecords", 502, b"<html>bad gateway</html>");
        assert!(gateway.is_retryable());
        let denied = service_error(
            "GetRecords",
            400,
            br#"{"__type":"x#AccessDeniedException","message":"no"}"#,
        );
        assert!(matches!(denied, SourceError::Fatal { .. }));
    }
}
