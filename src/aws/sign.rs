//! SigV4 signatures for HTTP requests the engine builds itself (DynamoDB
//! Streams GetRecords, Amazon OpenSearch Service), through `aws-sigv4`.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// What a signature is for.
#[derive(Debug, Clone, Copy)]
pub struct SigningScope<'a> {
    /// Signing name of the service (`dynamodb`, `es`, `aoss`).
    pub service: &'a str,
    /// Region.
    pub region: &'a str,
    /// Also send `x-amz-content-sha256` (OpenSearch Serverless requires it).
    pub content_sha256_header: bool,
}

/// The headers that sign a request (`authorization`, `x-amz-date`, and
/// `x-amz-security-token` / `x-amz-content-sha256` when they apply), for a
/// request with `method`, `url`, the `headers` it will carry and `body`.
/// Fails only on an unsignable request (a malformed URL or header).
pub fn signature_headers(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    credentials: Credentials,
    scope: SigningScope<'_>,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let identity: Identity = credentials.into();
    let mut settings = SigningSettings::default();
    if scope.content_sha256_header {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|err| format!("cannot sign the request: {err}"))?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|err| format!("cannot sign the request: {err}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|err| format!("cannot sign the request: {err}"))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example credentials of AWS's SigV4 documentation and test suite.
    fn example_credentials() -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        )
    }

    fn at_20150830t123600z() -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160)
    }

    fn authorization(headers: &[(String, String)]) -> &str {
        headers
            .iter()
            .find(|(name, _)| name == "authorization")
            .map(|(_, value)| value.as_str())
            .expect("an authorization header")
    }

    #[test]
    fn matches_the_sigv4_test_suite_get_vanilla_vector() {
        let headers = signature_headers(
            "GET",
            "https://example.amazonaws.com/",
            &[],
            b"",
            example_credentials(),
            SigningScope {
                service: "service",
                region: "us-east-1",
                content_sha256_header: false,
            },
            at_20150830t123600z(),
        )
        .unwrap();
        assert_eq!(
            authorization(&headers),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn matches_the_documented_iam_list_users_example() {
        let headers = signature_headers(
            "GET",
            "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            b"",
            example_credentials(),
            SigningScope {
                service: "iam",
                region: "us-east-1",
                content_sha256_header: false,
            },
            at_20150830t123600z(),
        )
        .unwrap();
        assert_eq!(
            authorization(&headers),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn serverless_requests_carry_the_payload_hash() {
        let headers = signature_headers(
            "POST",
            "https://abc.us-east-1.aoss.amazonaws.com/_bulk",
            &[("content-type", "application/x-ndjson")],
            b"",
            example_credentials(),
            SigningScope {
                service: "aoss",
                region: "us-east-1",
                content_sha256_header: true,
            },
            at_20150830t123600z(),
        )
        .unwrap();
        let sha = headers.iter().find(|(n, _)| n == "x-amz-content-sha256");
        assert_eq!(
            sha.map(|(_, v)| v.as_str()),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert!(authorization(&headers).contains("/aoss/aws4_request"));
    }
}
