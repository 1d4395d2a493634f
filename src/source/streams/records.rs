//! GetRecords over a SigV4-signed HTTP request parsed with the engine's own
//! decoder. The SDK's GetRecords deserializer rejects a whole page when an
//! image holds an untagged `{}` (which DynamoDB Local writes for nested empty
//! maps) and would build SDK values only to convert them again; reading the
//! body directly keeps one bad record from blocking a shard and skips that copy.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::credentials::CachedCredentials;
use crate::decode::{parse_page, RecordsPage};
use crate::source::SourceError;

const OPERATION: &str = "GetRecords";
const TARGET: &str = "DynamoDBStreams_20120810.GetRecords";
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// Signs and sends GetRecords requests.
pub struct RecordsClient {
    http: reqwest::Client,
    endpoint: String,
    region: String,
    credentials: CachedCredentials,
}

impl RecordsClient {
    /// A client for the Streams endpoint `endpoint` in `region`.
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
                operation: OPERATION,
                message: format!("cannot build the HTTP client: {err}"),
            })?;
        Ok(Self {
            http,
            endpoint,
            region,
            credentials,
        })
    }

    /// Reads up to `limit` records at `iterator`.
    pub async fn get_records(
        &self,
        iterator: &str,
        limit: u32,
    ) -> Result<RecordsPage, SourceError> {
        let body = serde_json::to_vec(&serde_json::json!({
            "ShardIterator": iterator,
            "Limit": limit,
        }))
        .map_err(|err| fatal(format!("cannot encode the request: {err}")))?;
        let credentials = self.credentials.get().await.map_err(fatal)?;
        let identity: Identity = credentials.into();
        let headers = [("content-type", CONTENT_TYPE), ("x-amz-target", TARGET)];
        let signing_params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("dynamodb")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|err| fatal(format!("cannot sign the request: {err}")))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            &self.endpoint,
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|err| fatal(format!("cannot sign the request: {err}")))?;
        let (instructions, _signature) = sign(signable, &signing_params)
            .map_err(|err| fatal(format!("cannot sign the request: {err}")))?
            .into_parts();
        let mut request = self
            .http
            .post(&self.endpoint)
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", TARGET);
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|err| retryable(crate::error_text::with_causes(&err)))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| retryable(crate::error_text::with_causes(&err)))?;
        if status.is_success() {
            return parse_page(&bytes).map_err(|err| retryable(err.to_string()));
        }
        Err(service_error(status.as_u16(), &bytes))
    }
}

fn fatal(message: String) -> SourceError {
    SourceError::Fatal {
        operation: OPERATION,
        message,
    }
}

fn retryable(message: String) -> SourceError {
    SourceError::Retryable {
        operation: OPERATION,
        message,
    }
}

/// Maps an AWS JSON error body (`{"__type":"…#Code","message":"…"}`) to a [`SourceError`].
fn service_error(status: u16, body: &[u8]) -> SourceError {
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
            SourceError::from_code(OPERATION, code, parsed.message, status)
        }
        Err(_) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            SourceError::from_code(
                OPERATION,
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
            400,
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ExpiredIteratorException","message":"Iterator expired"}"#,
        );
        assert!(
            matches!(expired, SourceError::ExpiredIterator { ref message, .. } if message == "Iterator expired")
        );
        let throttled = service_error(
            400,
            br#"{"__type":"x#LimitExceededException","Message":"slow down"}"#,
        );
        assert!(throttled.is_retryable());
        let gateway = service_error(502, b"<html>bad gateway</html>");
        assert!(gateway.is_retryable());
        let denied = service_error(
            400,
            br#"{"__type":"x#AccessDeniedException","message":"no"}"#,
        );
        assert!(matches!(denied, SourceError::Fatal { .. }));
    }
}
