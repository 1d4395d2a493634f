//! Errors of the stream APIs, classified by what the engine does about them.

use aws_sdk_dynamodbstreams::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// A failed call to DynamoDB or DynamoDB Streams.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The shard iterator is older than 15 minutes: get a new one.
    #[error("{operation}: shard iterator expired: {message}")]
    ExpiredIterator {
        /// The API call.
        operation: &'static str,
        /// The service's message.
        message: String,
    },
    /// The requested position is older than the stream's retention.
    #[error("{operation}: records were trimmed from the stream: {message}")]
    Trimmed {
        /// The API call.
        operation: &'static str,
        /// The service's message.
        message: String,
    },
    /// Throttled or a server-side error: retry with backoff.
    #[error("{operation}: {message}")]
    Retryable {
        /// The API call.
        operation: &'static str,
        /// What happened.
        message: String,
    },
    /// The table, stream or shard does not exist.
    #[error("{operation}: not found: {message}")]
    NotFound {
        /// The API call.
        operation: &'static str,
        /// The service's message.
        message: String,
    },
    /// Anything retrying cannot fix (credentials, permissions, bad request).
    #[error("{operation}: {message}")]
    Fatal {
        /// The API call.
        operation: &'static str,
        /// What happened.
        message: String,
    },
}

/// Error codes with which AWS refuses a call for throughput.
const THROTTLING_CODES: [&str; 5] = [
    "LimitExceededException",
    "ProvisionedThroughputExceededException",
    "KMSThrottlingException",
    "ThrottlingException",
    "RequestLimitExceeded",
];

impl SourceError {
    /// Classifies a service error code (`ExpiredIteratorException`, …) and message.
    pub fn from_code(operation: &'static str, code: &str, message: String, status: u16) -> Self {
        match code {
            "ExpiredIteratorException" => Self::ExpiredIterator { operation, message },
            "TrimmedDataAccessException" => Self::Trimmed { operation, message },
            "ResourceNotFoundException" => Self::NotFound { operation, message },
            _ if THROTTLING_CODES.contains(&code) => Self::Retryable {
                operation,
                message: format!("{code}: {message}"),
            },
            "InternalServerError" | "InternalFailure" | "ServiceUnavailable" => Self::Retryable {
                operation,
                message: format!("{code}: {message}"),
            },
            _ if status >= 500 => Self::Retryable {
                operation,
                message: format!("{code}: {message}"),
            },
            _ => Self::Fatal {
                operation,
                message: format!("{code}: {message}"),
            },
        }
    }

    /// Classifies an AWS SDK error. A service error without a code (a
    /// load balancer's bare 502, say) is classified by its HTTP status.
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match &err {
            SdkError::ServiceError(service) => {
                let inner = service.err();
                let status = service.raw().status().as_u16();
                let code = inner.code().unwrap_or("UnknownError").to_owned();
                let message = match inner.message() {
                    Some(message) => message.to_owned(),
                    None => format!("HTTP status {status}"),
                };
                Self::from_code(operation, &code, message, status)
            }
            SdkError::DispatchFailure(_)
            | SdkError::TimeoutError(_)
            | SdkError::ResponseError(_) => Self::Retryable {
                operation,
                message: root_cause(&err),
            },
            _ => Self::Fatal {
                operation,
                message: DisplayErrorContext(&err).to_string(),
            },
        }
    }

    /// True for errors worth retrying after a backoff.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }

    /// True when the service refused the call for throughput (throttling).
    pub fn is_throttling(&self) -> bool {
        match self {
            Self::Retryable { message, .. } => THROTTLING_CODES.iter().any(|code| {
                message
                    .strip_prefix(code)
                    .is_some_and(|rest| rest.starts_with(':'))
            }),
            _ => false,
        }
    }
}

/// The innermost cause of an error chain, which names what really failed
/// ("Connection refused (os error 111)").
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    let text = current.to_string();
    if text.is_empty() {
        err.to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        let classify =
            |code, status| SourceError::from_code("GetRecords", code, "m".into(), status);
        assert!(matches!(
            classify("ExpiredIteratorException", 400),
            SourceError::ExpiredIterator { .. }
        ));
        assert!(matches!(
            classify("TrimmedDataAccessException", 400),
            SourceError::Trimmed { .. }
        ));
        assert!(classify("LimitExceededException", 400).is_retryable());
        assert!(classify("LimitExceededException", 400).is_throttling());
        assert!(classify("Whatever", 503).is_retryable());
        assert!(!classify("Whatever", 503).is_throttling());
        assert!(matches!(
            classify("AccessDeniedException", 400),
            SourceError::Fatal { .. }
        ));
        assert!(matches!(
            classify("ResourceNotFoundException", 400),
            SourceError::NotFound { .. }
        ));
    }
}
