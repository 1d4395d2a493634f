//! Settings of the `elasticsearch` sink (Elasticsearch and OpenSearch) and
//! its registration contract.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::numbers::NumberStyle;
use super::ElasticsearchSink;
use crate::schema::SchemaEvent;
use crate::secret::Secret;
use crate::sink::batch::BatchConfig;
use crate::sink::registry::{check_http_url, InvalidField, SinkEnv, SinkSpec};
use crate::sink::SinkError;

/// Settings of the `elasticsearch` sink.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchSinkConfig {
    /// Name in logs; defaults to `elasticsearch`.
    pub name: Option<String>,
    /// The cluster's HTTP(S) endpoint, e.g. `https://search-x.us-east-1.es.amazonaws.com`.
    pub url: String,
    /// Index per table: `{table}` becomes the table name in lower case.
    #[serde(default = "default_index")]
    pub index: String,
    /// Route documents by their partition key (`partition_key`), or not (`none`).
    #[serde(default)]
    pub routing: Routing,
    /// How numbers appear in documents (`exact`, `string` or `number`).
    #[serde(default)]
    pub numbers: NumberStyle,
    /// Add an object with op, table, shard, sequence, version and time under
    /// this field; none when unset.
    pub metadata_field: Option<String>,
    /// `delete` removes the document; `soft_delete` replaces it with a
    /// tombstone (the keys and `deleted_field: true`) that keeps its
    /// version for replays longer than the index's `gc_deletes`.
    #[serde(default)]
    pub deletes: DeleteMode,
    /// The tombstone marker in `soft_delete` mode.
    #[serde(default = "default_deleted_field")]
    pub deleted_field: String,
    /// Create each table's index when missing, with `index_body_file`.
    #[serde(default)]
    pub create_index: bool,
    /// `"auto"`: map every attribute explicitly with a type inferred from
    /// its values, add fields as they appear, and put a value whose type
    /// changed under a suffixed field (see the book's Elasticsearch page); the sink creates
    /// missing indices itself. Unset: the index's own (dynamic) mapping.
    pub mapping: Option<MappingMode>,
    /// With `mapping = "auto"`: the index holding the schema history (one
    /// document per mapped field); defaults to `dynamo-cdc-schema`.
    pub schema_index: Option<String>,
    /// JSON body (`settings`, `mappings`) for the indices the sink creates.
    pub index_body_file: Option<PathBuf>,
    /// HTTP basic authentication user (with `password`).
    pub username: Option<String>,
    /// HTTP basic authentication password; never logged.
    pub password: Option<Secret>,
    /// An API key (the `encoded` value Elasticsearch returns); never logged.
    pub api_key: Option<Secret>,
    /// A bearer token; never logged.
    pub bearer_token: Option<Secret>,
    /// Sign requests with SigV4 for this service: `es` (Amazon OpenSearch
    /// Service domains) or `aoss` (OpenSearch Serverless); credentials from
    /// the standard AWS chain.
    pub aws_sigv4: Option<SigV4Service>,
    /// Region for SigV4; defaults to `aws.region`.
    pub region: Option<String>,
    /// PEM file of extra trusted CA certificates for `https://`.
    pub ca_file: Option<PathBuf>,
    /// Gzip request bodies.
    #[serde(default)]
    pub gzip: bool,
    /// Actions per `_bulk` request.
    #[serde(default = "default_bulk_actions")]
    pub bulk_max_actions: usize,
    /// Bytes per `_bulk` request (before gzip).
    #[serde(default = "default_bulk_bytes")]
    pub bulk_max_bytes: usize,
    /// `_bulk` requests in flight at once.
    #[serde(default = "default_in_flight")]
    pub max_requests_in_flight: usize,
    /// Retry rounds for items answered 429 or 5xx within one batch, before
    /// the batch as a whole is retried later.
    #[serde(default = "default_item_retries")]
    pub item_retries: u32,
    /// Timeout of one HTTP request.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    #[schemars(with = "crate::json_schema::HumanDuration")]
    pub request_timeout: Duration,
    /// Batching.
    #[serde(default)]
    pub batch: BatchConfig,
}

/// How the sink maps attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MappingMode {
    /// Explicit typed fields inferred from the data, added as they appear.
    Auto,
}

/// The schema history index when `schema_index` is unset.
pub const DEFAULT_SCHEMA_INDEX: &str = "dynamo-cdc-schema";

impl ElasticsearchSinkConfig {
    /// True with `mapping = "auto"`.
    pub fn auto_mapping(&self) -> bool {
        self.mapping == Some(MappingMode::Auto)
    }

    /// The schema history index (`schema_index` or its default).
    pub fn schema_index(&self) -> &str {
        self.schema_index.as_deref().unwrap_or(DEFAULT_SCHEMA_INDEX)
    }
}

/// Document routing.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// The cluster routes by `_id`.
    #[default]
    None,
    /// Route by the partition key, so an item collection shares a shard.
    PartitionKey,
}

/// What a delete does to the document.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DeleteMode {
    /// A versioned delete.
    #[default]
    Delete,
    /// A versioned tombstone document.
    SoftDelete,
}

/// The SigV4 signing name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SigV4Service {
    /// Amazon OpenSearch Service domains.
    Es,
    /// Amazon OpenSearch Serverless collections.
    Aoss,
}

impl SigV4Service {
    /// The signing name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Es => "es",
            Self::Aoss => "aoss",
        }
    }
}

fn default_index() -> String {
    "{table}".into()
}

fn default_deleted_field() -> String {
    "dynamodb_deleted".into()
}

fn default_bulk_actions() -> usize {
    1000
}

fn default_bulk_bytes() -> usize {
    5 * 1024 * 1024
}

fn default_in_flight() -> usize {
    4
}

fn default_item_retries() -> u32 {
    6
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}

impl SinkSpec for ElasticsearchSinkConfig {
    type Writer = ElasticsearchSink;

    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn batch(&self) -> &BatchConfig {
        &self.batch
    }

    fn validate(&self) -> Result<(), InvalidField> {
        if self.url.is_empty() {
            return Err(InvalidField::new("url", "must not be empty"));
        }
        check_http_url("url", Some(&self.url))?;
        validate_index(&self.index)?;
        let methods = [
            self.password.is_some() || self.username.is_some(),
            self.api_key.is_some(),
            self.bearer_token.is_some(),
            self.aws_sigv4.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err(InvalidField::new(
                "aws_sigv4",
                "choose one authentication: username/password, api_key, bearer_token or aws_sigv4",
            ));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(InvalidField::new(
                "password",
                "basic authentication needs both username and password",
            ));
        }
        if self.index_body_file.is_some() && !self.create_index && !self.auto_mapping() {
            return Err(InvalidField::new(
                "index_body_file",
                "is used only when the sink creates indices: set create_index = true (or mapping = \"auto\")",
            ));
        }
        self.validate_schema_index()?;
        for (field, value) in [
            ("bulk_max_actions", self.bulk_max_actions),
            ("bulk_max_bytes", self.bulk_max_bytes),
            ("max_requests_in_flight", self.max_requests_in_flight),
        ] {
            if value == 0 {
                return Err(InvalidField::new(field, "must be above zero"));
            }
        }
        if self.deleted_field.is_empty() || self.metadata_field.as_deref() == Some("") {
            return Err(InvalidField::new(
                "deleted_field",
                "field names must not be empty",
            ));
        }
        Ok(())
    }

    fn needs_new_images(&self) -> bool {
        true
    }

    async fn open(&self, env: SinkEnv<'_>) -> Result<ElasticsearchSink, SinkError> {
        ElasticsearchSink::connect(env, self).await
    }

    /// The history in `schema_index` of the indices this sink's `index`
    /// template names, oldest first; `None` without `mapping = "auto"`.
    async fn schema_history(
        &self,
        env: SinkEnv<'_>,
    ) -> Result<Option<Vec<SchemaEvent>>, SinkError> {
        if !self.auto_mapping() {
            return Ok(None);
        }
        super::auto_mapping::read_history(self, env).await.map(Some)
    }
}

impl ElasticsearchSinkConfig {
    fn validate_schema_index(&self) -> Result<(), InvalidField> {
        let Some(name) = &self.schema_index else {
            return Ok(());
        };
        if !self.auto_mapping() {
            return Err(InvalidField::new(
                "schema_index",
                "is used only with mapping = \"auto\"",
            ));
        }
        if name.contains('{') {
            return Err(InvalidField::new(
                "schema_index",
                format!("{name:?} is one index for every table: no {{table}}"),
            ));
        }
        validate_index(name).map_err(|invalid| InvalidField::new("schema_index", invalid.message))
    }
}

/// Index names are lower case, without `\ / * ? " < > | , #` or spaces,
/// and do not start with `-`, `_` or `+`.
fn validate_index(template: &str) -> Result<(), InvalidField> {
    let sample = template.replace("{table}", "t");
    let bad = |c: char| c.is_ascii_uppercase() || "\\/*?\"<>|,# :".contains(c);
    if sample.is_empty() || sample.starts_with(['-', '_', '+']) || sample.chars().any(bad) {
        return Err(InvalidField::new(
            "index",
            format!(
                "{template:?} is not a valid index name template: lower case, no spaces or \\ / * ? \" < > | , # :, not starting with - _ +"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> ElasticsearchSinkConfig {
        toml::from_str(&format!("url = \"http://127.0.0.1:9200\"\n{extra}")).expect("a config")
    }

    #[test]
    fn auto_mapping_settings_are_checked() {
        assert!(config("mapping = \"auto\"").validate().is_ok());
        assert_eq!(
            config("mapping = \"auto\"").schema_index(),
            DEFAULT_SCHEMA_INDEX
        );
        let field = |extra: &str| config(extra).validate().unwrap_err().field;
        assert_eq!(field("schema_index = \"h\""), "schema_index");
        assert_eq!(
            field("mapping = \"auto\"\nschema_index = \"h-{table}\""),
            "schema_index"
        );
        assert_eq!(
            field("mapping = \"auto\"\nschema_index = \"Bad\""),
            "schema_index"
        );
        assert!(config("mapping = \"auto\"\nindex_body_file = \"b.json\"")
            .validate()
            .is_ok());
        assert!(toml::from_str::<ElasticsearchSinkConfig>(
            "url = \"http://x\"\nmapping = \"dynamic\""
        )
        .is_err());
    }
}
