//! Writes one object per (table, shard) of a batch, then sends their notices.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;

use flate2::write::GzEncoder;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

use super::auto_columns::AutoColumns;
use super::keys::object_key;
use super::notice::ObjectNotice;
use super::parquet_columns::{value_text, TypedColumn};
use super::parquet_error::ParquetFileError;
use super::parquet_format::{encode_events, encode_filled};
use super::schema_objects::SchemaObjects;
use super::{S3Format, S3SinkConfig};
use crate::aws::AwsConfig;
use crate::metric_names as names;
use crate::model::ChangeEvent;
use crate::sink::clickhouse::ColumnType;
use crate::sink::{Batch, Rejected, SinkError, SinkWriter};

/// The `s3` sink.
pub struct S3Sink {
    name: String,
    bucket: String,
    prefix: String,
    format: S3Format,
    columns: Vec<(Option<String>, TypedColumn)>,
    auto: Option<AutoColumns>,
    store: Arc<AmazonS3>,
    sqs: Option<(aws_sdk_sqs::Client, String)>,
}

/// The sink's region: its own, else `aws.region`, else `AWS_REGION`.
fn region(config: &S3SinkConfig, aws: &AwsConfig) -> Result<String, String> {
    config
        .region
        .clone()
        .or_else(|| aws.region.clone())
        .or_else(|| std::env::var("AWS_REGION").ok())
        .ok_or_else(|| "no region: set region on the sink, aws.region or AWS_REGION".into())
}

/// The S3 client of the sink's bucket (credentials as [`S3Sink::connect`] says).
pub fn bucket_store(config: &S3SinkConfig, aws: &AwsConfig) -> Result<AmazonS3, String> {
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&config.bucket)
        .with_region(region(config, aws)?);
    if let Some(endpoint) = &config.endpoint_url {
        builder = builder.with_endpoint(endpoint).with_allow_http(true);
    }
    builder
        .build()
        .map_err(|e| format!("S3 bucket {}: {e}", config.bucket))
}

impl S3Sink {
    /// Builds the S3 and SQS clients. Credentials: the environment
    /// (`AWS_ACCESS_KEY_ID`, …), web identity or instance metadata for S3; the
    /// standard AWS chain for SQS.
    pub async fn connect(
        name: &str,
        config: &S3SinkConfig,
        aws: &AwsConfig,
    ) -> Result<Self, SinkError> {
        let fatal = SinkError::fatal_of(name);
        let region = region(config, aws).map_err(fatal)?;
        let store = Arc::new(bucket_store(config, aws).map_err(fatal)?);
        let auto = if config.columns.is_auto() {
            let history = SchemaObjects::new(Arc::clone(&store), &config.bucket, &config.prefix);
            let auto =
                AutoColumns::open(name, history)
                    .await
                    .map_err(|e| SinkError::Transient {
                        sink: name.to_owned(),
                        message: format!("reading the schema history: {e}"),
                    })?;
            Some(auto)
        } else {
            None
        };
        let columns = config
            .columns
            .mapped()
            .iter()
            .map(|c| {
                ColumnType::parse(&c.column_type).map(|column_type| {
                    (
                        c.table.clone(),
                        TypedColumn {
                            name: c.name.clone(),
                            attribute: c.attribute().to_owned(),
                            column_type,
                        },
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(fatal)?;
        let sqs = match &config.sqs_queue_url {
            Some(queue) => {
                let mut loader =
                    crate::aws::config_loader().region(aws_config::Region::new(region.clone()));
                if let Some(profile) = &aws.profile {
                    loader = loader.profile_name(profile);
                }
                if let Some(endpoint) = config
                    .sqs_endpoint_url
                    .as_ref()
                    .or(config.endpoint_url.as_ref())
                {
                    loader = loader.endpoint_url(endpoint);
                }
                let sdk = loader.load().await;
                Some((aws_sdk_sqs::Client::new(&sdk), queue.clone()))
            }
            None => None,
        };
        Ok(Self {
            name: name.to_owned(),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            format: config.format,
            columns,
            auto,
            store,
            sqs,
        })
    }

    fn transient(&self, message: String) -> SinkError {
        SinkError::Transient {
            sink: self.name.clone(),
            message,
        }
    }
}

/// One object to write: its key, gzipped body and notice.
struct Object {
    key: String,
    body: Vec<u8>,
    notice: ObjectNotice,
}

/// Everything that shapes the objects of a batch.
struct Layout<'a> {
    bucket: &'a str,
    prefix: &'a str,
    format: S3Format,
    columns: &'a [(Option<String>, TypedColumn)],
    auto: Option<&'a AutoColumns>,
}

/// The objects of a batch, the changes rejected, and how many typed
/// values each table left out (`columns = "auto"`).
type Built = (Vec<Object>, Vec<Rejected>, HashMap<Arc<str>, u64>);

/// Why an object's body cannot be made: the batch cannot be written.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    /// Compressing the JSON Lines failed.
    #[error("cannot gzip the JSON Lines: {0}")]
    Gzip(#[from] std::io::Error),
    /// The Parquet file cannot be written.
    #[error(transparent)]
    Parquet(#[from] ParquetFileError),
}

fn build_objects(batch: &Batch, layout: &Layout<'_>) -> Result<Built, BodyError> {
    let (bucket, prefix, format) = (layout.bucket, layout.prefix, layout.format);
    let mut rejected = Vec::new();
    // (table, shard) groups in first-seen order; events keep stream order within a shard.
    let mut order: Vec<(Arc<str>, Arc<str>)> = Vec::new();
    let mut groups: HashMap<(Arc<str>, Arc<str>), Vec<&ChangeEvent>> = HashMap::new();
    for ((chunk, index), event) in batch.events() {
        // A typed value that does not fit rejects the change (dead letter).
        if format == S3Format::Parquet {
            let problem = layout
                .columns
                .iter()
                .filter(|(table, _)| table.as_deref().is_none_or(|t| t == &*event.table))
                .find_map(|(_, column)| value_text(column, event).err());
            if let Some(problem) = problem {
                rejected.push(Rejected {
                    chunk,
                    event: index,
                    reason: problem.to_string(),
                });
                continue;
            }
        }
        let group = (Arc::clone(&event.table), Arc::clone(&event.position.shard));
        groups
            .entry(group.clone())
            .or_insert_with(|| {
                order.push(group);
                Vec::new()
            })
            .push(event);
    }
    let mut objects = Vec::new();
    let mut untyped: HashMap<Arc<str>, u64> = HashMap::new();
    for group in order {
        let Some(events) = groups.get(&group) else {
            continue;
        };
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            continue;
        };
        let (body, left_out) = encode(events, &group.0, layout)?;
        if left_out > 0 {
            *untyped.entry(Arc::clone(&group.0)).or_default() += left_out;
        }
        let key = object_key(
            prefix,
            &group.0,
            &group.1,
            first.position.sequence.as_str(),
            last.position.sequence.as_str(),
            first.approx_time_ms,
            format.extension(),
        );
        objects.push(Object {
            notice: ObjectNotice {
                bucket: bucket.to_owned(),
                key: key.clone(),
                table: group.0.to_string(),
                shard: group.1.to_string(),
                records: events.len(),
                first_sequence: first.position.sequence.as_str().to_owned(),
                last_sequence: last.position.sequence.as_str().to_owned(),
                format: format.extension().into(),
            },
            key,
            body,
        });
    }
    Ok((objects, rejected, untyped))
}

/// The body of one object of `table`'s `events`, and how many typed
/// values were left out (`columns = "auto"`).
fn encode(
    events: &[&ChangeEvent],
    table: &str,
    layout: &Layout<'_>,
) -> Result<(Vec<u8>, u64), BodyError> {
    match (layout.format, layout.auto) {
        (S3Format::JsonlGz, _) => {
            let mut lines = Vec::new();
            for event in events {
                event.write_json_line(&mut lines);
            }
            let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&lines)?;
            Ok((encoder.finish()?, 0))
        }
        (S3Format::Parquet, Some(auto)) => {
            let (filled, left_out) = auto.fill(table, events);
            Ok((encode_filled(events, &filled)?, left_out))
        }
        (S3Format::Parquet, None) => {
            let typed: Vec<TypedColumn> = layout
                .columns
                .iter()
                .filter(|(only, _)| only.as_deref().is_none_or(|t| t == table))
                .map(|(_, column)| column.clone())
                .collect();
            Ok((encode_events(events, &typed)?, 0))
        }
    }
}

/// Each table's events of `batch`, tables in first-seen order.
fn by_table(batch: &Batch) -> Vec<(Arc<str>, Vec<&ChangeEvent>)> {
    let mut tables: Vec<(Arc<str>, Vec<&ChangeEvent>)> = Vec::new();
    for (_, event) in batch.events() {
        match tables.iter_mut().find(|(t, _)| *t == event.table) {
            Some((_, events)) => events.push(event),
            None => tables.push((Arc::clone(&event.table), vec![event])),
        }
    }
    tables
}

impl SinkWriter for S3Sink {
    async fn write(&mut self, batch: Batch) -> Result<Vec<Rejected>, SinkError> {
        // Columns first: each change is recorded before a file uses it.
        if let Some(auto) = self.auto.as_mut() {
            for (table, events) in by_table(&batch) {
                auto.evolve(&table, &events)
                    .await
                    .map_err(|e| SinkError::Transient {
                        sink: self.name.clone(),
                        message: format!("schema history of table {table}: {e}"),
                    })?;
            }
        }
        let layout = Layout {
            bucket: &self.bucket,
            prefix: &self.prefix,
            format: self.format,
            columns: &self.columns,
            auto: self.auto.as_ref(),
        };
        let (objects, rejected, untyped) =
            build_objects(&batch, &layout).map_err(|err| SinkError::Fatal {
                sink: self.name.clone(),
                message: crate::error_text::with_causes(&err),
            })?;
        for (table, count) in untyped.into_iter().filter(|(_, n)| *n > 0) {
            metrics::counter!(names::SCHEMA_UNTYPED_VALUES, "sink" => self.name.clone(),
                "table" => table.to_string())
            .increment(count);
        }
        // Every object is durable before any notice goes out, and every
        // notice is sent before the batch is acknowledged.
        for object in &objects {
            self.store
                .put(
                    &Path::from(object.key.as_str()),
                    PutPayload::from(object.body.clone()),
                )
                .await
                .map_err(|e| {
                    self.transient(format!("put s3://{}/{}: {e}", self.bucket, object.key))
                })?;
        }
        if let Some((client, queue)) = &self.sqs {
            for object in &objects {
                let body = serde_json::to_string(&object.notice).map_err(|e| {
                    self.transient(format!(
                        "cannot serialise the notice of {}: {e}",
                        object.key
                    ))
                })?;
                client
                    .send_message()
                    .queue_url(queue)
                    .message_body(body)
                    .send()
                    .await
                    .map_err(|e| {
                        self.transient(format!(
                            "SQS notice for s3://{}/{}: {}",
                            self.bucket,
                            object.key,
                            crate::error_text::with_causes(&e)
                        ))
                    })?;
            }
        }
        Ok(rejected)
    }
}
