//! HTTP to an Elasticsearch or OpenSearch cluster: authentication (basic,
//! API key, bearer token or SigV4), TLS with an extra CA, optional gzip,
//! and the few calls the sink makes (`/`, index creation, `_bulk`, and
//! for `mapping = "auto"` the mapping API and the schema history's documents).

use std::io::Write as _;
use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;

use super::config::{ElasticsearchSinkConfig, SigV4Service};
use crate::aws::credentials::CachedCredentials;
use crate::aws::sign::{signature_headers, SigningScope};

/// A failed request: whether retrying may help, and what the server said.
#[derive(Debug, Clone)]
pub struct RequestError {
    /// Worth retrying (connection trouble, 429, 502–504).
    pub transient: bool,
    /// HTTP status, when a response came.
    pub status: Option<u16>,
    /// What went wrong, with the server's message.
    pub message: String,
}

/// How requests are authenticated.
enum Auth {
    None,
    /// A ready `Authorization` header value (basic, API key, bearer).
    Header(String),
    SigV4 {
        service: SigV4Service,
        region: String,
        credentials: CachedCredentials,
    },
}

/// A client for one cluster. Its `Debug` form shows no secret.
pub struct EsClient {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    gzip: bool,
}

impl std::fmt::Debug for EsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsClient")
            .field("base", &self.base)
            .finish()
    }
}

impl EsClient {
    /// A client for `config.url`. SigV4 needs `aws` (region, credentials).
    pub async fn new(
        config: &ElasticsearchSinkConfig,
        aws: &crate::aws::AwsConfig,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder().timeout(config.request_timeout);
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|err| format!("cannot read ca_file {}: {err}", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|err| format!("ca_file {}: {err}", path.display()))?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        Ok(Self {
            http,
            base: config.url.trim_end_matches('/').to_owned(),
            auth: auth(config, aws).await?,
            gzip: config.gzip,
        })
    }

    /// `GET /`: the cluster's distribution and version, checking that it
    /// answers and accepts the credentials.
    pub async fn info(&self) -> Result<String, RequestError> {
        let body = self.send("GET", "/", None, &[]).await?;
        let info: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let version = &info["version"];
        let distribution = version["distribution"].as_str().unwrap_or("elasticsearch");
        Ok(format!(
            "{distribution} {}",
            version["number"].as_str().unwrap_or("(unknown version)")
        ))
    }

    /// Creates `index` with `body` unless it exists.
    pub async fn ensure_index(
        &self,
        index: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<bool, RequestError> {
        let path = format!("/{index}");
        match self.send("HEAD", &path, None, &[]).await {
            Ok(_) => return Ok(false),
            Err(err) if err.status == Some(404) => {}
            Err(err) => return Err(err),
        }
        let body = body.cloned().unwrap_or_else(|| serde_json::json!({}));
        let bytes = Bytes::from(body.to_string());
        match self
            .send(
                "PUT",
                &path,
                Some(bytes),
                &[("content-type", "application/json")],
            )
            .await
        {
            Ok(_) => Ok(true),
            // Another worker created it meanwhile.
            Err(err) if err.message.contains("resource_already_exists_exception") => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// `GET <index>/_mapping`: the index's top-level fields (`properties`).
    pub async fn mapping(
        &self,
        index: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, RequestError> {
        let body = self
            .send("GET", &format!("/{index}/_mapping"), None, &[])
            .await?;
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        // Keyed by the concrete index (an alias answers with its index).
        let properties = answer
            .as_object()
            .and_then(|indices| indices.values().next())
            .map(|mapping| mapping["mappings"]["properties"].clone());
        Ok(match properties {
            Some(serde_json::Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        })
    }

    /// `PUT <index>/_mapping` adding `properties` (fields already mapped
    /// alike are accepted again; a type change is a 400).
    pub async fn put_mapping(
        &self,
        index: &str,
        properties: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), RequestError> {
        let body = serde_json::json!({ "properties": properties }).to_string();
        self.send(
            "PUT",
            &format!("/{index}/_mapping"),
            Some(Bytes::from(body)),
            &[("content-type", "application/json")],
        )
        .await
        .map(|_| ())
    }

    /// Writes `document` as `id` in `index` unless that id exists (made
    /// visible to search at once); returns false when it existed.
    pub async fn create_document(
        &self,
        index: &str,
        id: &str,
        document: &serde_json::Value,
    ) -> Result<bool, RequestError> {
        let path = format!("/{index}/_create/{id}?refresh=true");
        let body = Bytes::from(document.to_string());
        match self
            .send(
                "PUT",
                &path,
                Some(body),
                &[("content-type", "application/json")],
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if err.status == Some(409) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// The `_source` of every document of `index` (at most 10 000, the
    /// usual result window); `None` when the index does not exist.
    pub async fn all_documents(
        &self,
        index: &str,
    ) -> Result<Option<Vec<serde_json::Value>>, RequestError> {
        let query = serde_json::json!({"size": 10_000, "query": {"match_all": {}}});
        let answer = match self
            .send(
                "POST",
                &format!("/{index}/_search"),
                Some(Bytes::from(query.to_string())),
                &[("content-type", "application/json")],
            )
            .await
        {
            Ok(answer) => answer,
            Err(err) if err.status == Some(404) => return Ok(None),
            Err(err) => return Err(err),
        };
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
        let hits = answer["hits"]["hits"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(Some(
            hits.into_iter()
                .map(|mut hit| hit["_source"].take())
                .collect(),
        ))
    }

    /// Deletes the documents of `index` that `query` matches (conflicts
    /// skipped: a document rewritten meanwhile is newer) and returns how
    /// many it deleted.
    pub async fn delete_by_query(
        &self,
        index: &str,
        query: &serde_json::Value,
    ) -> Result<u64, RequestError> {
        let path = format!("/{index}/_delete_by_query?conflicts=proceed&refresh=true");
        let body = Bytes::from(serde_json::json!({ "query": query }).to_string());
        let answer = self
            .send(
                "POST",
                &path,
                Some(body),
                &[("content-type", "application/json")],
            )
            .await?;
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
        match answer["failures"].as_array() {
            Some(failures) if !failures.is_empty() => Err(RequestError {
                transient: true,
                status: None,
                message: format!(
                    "POST {path}: failures: {}",
                    serde_json::Value::from(failures.clone())
                ),
            }),
            _ => Ok(answer["deleted"].as_u64().unwrap_or(0)),
        }
    }

    /// Sends one `_bulk` body (NDJSON) and returns the response body.
    pub async fn bulk(&self, ndjson: Bytes) -> Result<Bytes, RequestError> {
        self.send(
            "POST",
            "/_bulk",
            Some(ndjson),
            &[("content-type", "application/x-ndjson")],
        )
        .await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Bytes>,
        headers: &[(&str, &str)],
    ) -> Result<Bytes, RequestError> {
        let url = format!("{}{path}", self.base);
        let (body, encoding) = match body {
            Some(body) if self.gzip => (gzip(&body)?, Some("gzip")),
            Some(body) => (body, None),
            None => (Bytes::new(), None),
        };
        let mut all_headers: Vec<(&str, &str)> = headers.to_vec();
        if let Some(encoding) = encoding {
            all_headers.push(("content-encoding", encoding));
        }
        let method_value =
            reqwest::Method::from_bytes(method.as_bytes()).map_err(|err| RequestError {
                transient: false,
                status: None,
                message: err.to_string(),
            })?;
        let mut request = self.http.request(method_value, &url);
        for (name, value) in &all_headers {
            request = request.header(*name, *value);
        }
        for (name, value) in self.auth_headers(method, &url, &all_headers, &body).await? {
            request = request.header(name, value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|err| RequestError {
                transient: true,
                status: None,
                message: format!("{method} {path}: {}", crate::error_text::with_causes(&err)),
            })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|err| RequestError {
            transient: true,
            status: Some(status),
            message: format!("{method} {path}: {}", crate::error_text::with_causes(&err)),
        })?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        Err(RequestError {
            transient: matches!(status, 429 | 502 | 503 | 504),
            status: Some(status),
            message: format!("{method} {path}: HTTP {status}: {}", error_reason(&bytes)),
        })
    }

    async fn auth_headers(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, RequestError> {
        match &self.auth {
            Auth::None => Ok(Vec::new()),
            Auth::Header(value) => Ok(vec![("authorization".into(), value.clone())]),
            Auth::SigV4 {
                service,
                region,
                credentials,
            } => {
                let fail = |message: String| RequestError {
                    transient: false,
                    status: None,
                    message,
                };
                let credentials = credentials.get().await.map_err(fail)?;
                let scope = SigningScope {
                    service: service.name(),
                    region,
                    content_sha256_header: *service == SigV4Service::Aoss,
                };
                signature_headers(
                    method,
                    url,
                    headers,
                    body,
                    credentials,
                    scope,
                    SystemTime::now(),
                )
                .map_err(fail)
            }
        }
    }
}

async fn auth(
    config: &ElasticsearchSinkConfig,
    aws: &crate::aws::AwsConfig,
) -> Result<Auth, String> {
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        let pair = format!("{user}:{}", password.expose());
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        return Ok(Auth::Header(format!("Basic {encoded}")));
    }
    if let Some(key) = &config.api_key {
        return Ok(Auth::Header(format!("ApiKey {}", key.expose())));
    }
    if let Some(token) = &config.bearer_token {
        return Ok(Auth::Header(format!("Bearer {}", token.expose())));
    }
    let Some(service) = config.aws_sigv4 else {
        return Ok(Auth::None);
    };
    let mut loader = crate::aws::config_loader();
    if let Some(region) = config.region.as_ref().or(aws.region.as_ref()) {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(profile) = &aws.profile {
        loader = loader.profile_name(profile);
    }
    let sdk = loader.load().await;
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .ok_or("aws_sigv4 needs a region: set region on the sink, aws.region or AWS_REGION")?;
    let provider = sdk
        .credentials_provider()
        .ok_or("aws_sigv4: no AWS credentials provider could be configured")?;
    Ok(Auth::SigV4 {
        service,
        region,
        credentials: CachedCredentials::new(provider),
    })
}

fn gzip(body: &[u8]) -> Result<Bytes, RequestError> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .map(Bytes::from)
        .map_err(|err| RequestError {
            transient: false,
            status: None,
            message: format!("cannot gzip the request: {err}"),
        })
}

/// The `error.type` and `error.reason` of an error response, or its start.
pub fn error_reason(body: &[u8]) -> String {
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let error = &parsed["error"];
    match (error["type"].as_str(), error["reason"].as_str()) {
        (Some(kind), Some(reason)) => format!("{kind}: {reason}"),
        _ if error.is_string() => error.as_str().unwrap_or_default().to_owned(),
        _ => String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> ElasticsearchSinkConfig {
        let text = format!("url = \"http://127.0.0.1:9200\"\n{extra}");
        toml::from_str(&text).expect("a sink config")
    }

    async fn header(extra: &str) -> Option<String> {
        match auth(&config(extra), &crate::aws::AwsConfig::default()).await {
            Ok(Auth::Header(value)) => Some(value),
            _ => None,
        }
    }

    #[tokio::test]
    async fn each_credential_becomes_its_authorization_header() {
        assert_eq!(
            header("username = \"elastic\"\npassword = \"pa:ss\"").await,
            Some("Basic ZWxhc3RpYzpwYTpzcw==".into())
        );
        assert_eq!(
            header("api_key = \"VnVhQ2ZHY0JDZGJr\"").await,
            Some("ApiKey VnVhQ2ZHY0JDZGJr".into())
        );
        assert_eq!(
            header("bearer_token = \"t0ken\"").await,
            Some("Bearer t0ken".into())
        );
        assert!(matches!(
            auth(&config(""), &crate::aws::AwsConfig::default()).await,
            Ok(Auth::None)
        ));
    }

    #[tokio::test]
    async fn secrets_never_show_in_debug_output() {
        let basic = config("username = \"u\"\npassword = \"hunter2-secret\"");
        assert!(!format!("{basic:?}").contains("hunter2-secret"));
        let client = EsClient::new(&basic, &crate::aws::AwsConfig::default())
            .await
            .expect("a client");
        assert!(!format!("{client:?}").contains("hunter2-secret"));
        let keyed = config("api_key = \"k3y-secret\"");
        assert!(!format!("{keyed:?}").contains("k3y-secret"));
    }

    #[tokio::test]
    async fn an_unreadable_ca_file_is_named() {
        let missing = config("ca_file = \"/nonexistent/ca.pem\"");
        let err = EsClient::new(&missing, &crate::aws::AwsConfig::default())
            .await
            .expect_err("no such file");
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn error_reasons_come_from_the_servers_answer() {
        assert_eq!(
            error_reason(
                br#"{"error":{"type":"security_exception","reason":"missing authentication"},"status":401}"#
            ),
            "security_exception: missing authentication"
        );
        assert_eq!(error_reason(b"Bad Gateway"), "Bad Gateway");
    }
}
