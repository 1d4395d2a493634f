//! Writes batches into Elasticsearch or OpenSearch: the newest change per
//! document, as versioned `_bulk` actions in several requests at once (a
//! document is in one of them only), items answered 429 or 5xx sent again
//! with jittered backoff, refused documents dead-lettered.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::auto_mapping::{history_index_body, AutoMapping, Upsert};
use super::bulk::{item_outcomes, ndjson, split_requests, Action, ItemOutcome};
use super::client::{EsClient, RequestError};
use super::config::{DeleteMode, ElasticsearchSinkConfig, Routing};
use super::document::{
    document_id, finish_document, index_name, push_key_part, tombstone_document, upsert_document,
    DocumentIdError, DocumentStyle,
};
use super::version::{es_version, OrderCheck, VersionError};
use crate::backoff::Backoff;
use crate::metric_names as names;
use crate::model::{ChangeEvent, SequenceNumber, TableSchema};
use crate::sink::registry::SinkEnv;
use crate::sink::{Batch, Rejected, SinkError, SinkWriter};

/// The `elasticsearch` sink.
#[derive(Debug)]
pub struct ElasticsearchSink {
    name: String,
    client: Arc<EsClient>,
    targets: HashMap<Arc<str>, Target>,
    index_template: String,
    routing: Routing,
    deletes: DeleteMode,
    style: DocumentStyle,
    bulk_max_actions: usize,
    bulk_max_bytes: usize,
    in_flight: Arc<Semaphore>,
    item_retries: u32,
    order: OrderCheck,
    /// The known fields of every index with `mapping = "auto"`.
    auto: Option<AutoMapping>,
}

impl ElasticsearchSink {
    /// Connects (checking the credentials with `GET /`) and, with
    /// `create_index` or `mapping = "auto"`, creates every table's index
    /// that is missing; with `mapping = "auto"` also the schema history
    /// index, and reads each index's mapping.
    pub async fn connect(
        env: SinkEnv<'_>,
        config: &ElasticsearchSinkConfig,
    ) -> Result<Self, SinkError> {
        let fatal = SinkError::fatal_of(env.name);
        let client = EsClient::new(config, env.aws).await.map_err(fatal)?;
        let cluster = client
            .info()
            .await
            .map_err(|err| fatal(format!("cannot reach {}: {}", config.url, err.message)))?;
        tracing::info!(sink = %env.name, %cluster, url = %config.url, "connected");
        if config.create_index || config.auto_mapping() {
            create_indices(&client, env, config).await.map_err(fatal)?;
        }
        let auto = match config.auto_mapping() {
            true => Some(open_auto_mapping(&client, env, config).await?),
            false => None,
        };
        Ok(Self {
            name: env.name.to_owned(),
            client: Arc::new(client),
            targets: env
                .tables
                .iter()
                .map(|t| {
                    let target = Target {
                        schema: t.clone(),
                        index: index_name(&config.index, &t.name),
                    };
                    (Arc::clone(&t.name), target)
                })
                .collect(),
            index_template: config.index.clone(),
            routing: config.routing,
            deletes: config.deletes,
            style: DocumentStyle {
                numbers: config.numbers,
                metadata_field: config.metadata_field.clone(),
                deleted_field: config.deleted_field.clone(),
            },
            bulk_max_actions: config.bulk_max_actions,
            bulk_max_bytes: config.bulk_max_bytes,
            in_flight: Arc::new(Semaphore::new(config.max_requests_in_flight)),
            item_retries: config.item_retries,
            order: OrderCheck::default(),
            auto,
        })
    }

    /// The action for one change of document `id` at `version`.
    fn action(&self, target: &Target, change: &Change<'_>) -> Result<Action, String> {
        let event = change.event;
        let routing = match self.routing {
            Routing::None => None,
            Routing::PartitionKey => {
                let mut part = String::new();
                let key = &target.schema.keys[0].name;
                event
                    .keys
                    .get(key)
                    .and_then(|v| push_key_part(&mut part, v));
                Some(part)
            }
        };
        let version = change.version;
        let (op, document) = match (event.op.is_upsert(), self.deletes) {
            (true, _) => ("index", Some(self.upsert(target, event, version)?)),
            (false, DeleteMode::Delete) => ("delete", None),
            (false, DeleteMode::SoftDelete) => {
                let keys = match &self.auto {
                    Some(auto) => auto.plain_document(&target.index, &event.keys),
                    None => crate::model::plain_item(&event.keys),
                };
                let tombstone = tombstone_document(keys, event, version, &self.style);
                ("index", Some(tombstone))
            }
        };
        let header = Action::header(op, &target.index, &change.id, version, routing.as_deref());
        Ok(Action {
            slot: change.slot,
            header,
            document,
        })
    }

    /// The document of an insert, modify or snapshot read: the new image,
    /// its fields named and typed by the auto mapping when there is one.
    fn upsert(&self, target: &Target, event: &ChangeEvent, version: i64) -> Result<String, String> {
        let Some(auto) = &self.auto else {
            return upsert_document(event, version, &self.style);
        };
        let item = new_item(event)?;
        let plain = auto.plain_document(&target.index, item);
        Ok(finish_document(plain, event, version, &self.style))
    }

    /// The newest change per document, and the changes refused before
    /// sending.
    fn choose<'a>(&mut self, batch: &'a Batch) -> (Vec<Change<'a>>, Vec<Rejected>) {
        let mut rejected = Vec::new();
        let mut newest: HashMap<(Arc<str>, String), Change<'_>> = HashMap::new();
        for (slot, event) in batch.events() {
            match self.change(slot, event) {
                Ok(change) => match newest.entry((Arc::clone(&event.table), change.id.clone())) {
                    Entry::Occupied(mut held) => {
                        if event.version() >= held.get().event.version() {
                            held.insert(change);
                        }
                    }
                    Entry::Vacant(free) => {
                        free.insert(change);
                    }
                },
                Err(reason) => rejected.push(refusal(slot, reason)),
            }
        }
        let mut chosen: Vec<Change<'_>> = newest.into_values().collect();
        chosen.sort_by_key(|change| change.slot);
        (chosen, rejected)
    }

    /// Maps the fields the chosen upserts need (`mapping = "auto"`);
    /// an upsert whose image cannot be read is left to its action.
    async fn prepare_mapping(&mut self, chosen: &[Change<'_>]) -> Result<(), SinkError> {
        let Some(auto) = &mut self.auto else {
            return Ok(());
        };
        let upserts: Vec<Upsert<'_>> = chosen
            .iter()
            .filter(|change| change.event.op.is_upsert())
            .filter_map(|change| {
                let target = self.targets.get(&change.event.table)?;
                Some(Upsert {
                    table: &target.schema.name,
                    index: &target.index,
                    item: new_item(change.event).ok()?,
                    version: change.event.version(),
                })
            })
            .collect();
        auto.prepare(&self.client, &upserts)
            .await
            .map_err(|err| err.into_sink_error(&self.name))
    }

    /// The chosen changes as actions; those refused go to `rejected`.
    fn actions(&self, chosen: Vec<Change<'_>>, rejected: &mut Vec<Rejected>) -> Vec<Action> {
        let mut actions = Vec::with_capacity(chosen.len());
        for change in chosen {
            let target = &self.targets[&change.event.table];
            match self.action(target, &change) {
                Ok(action) => actions.push(action),
                Err(reason) => rejected.push(refusal(change.slot, reason)),
            }
        }
        actions
    }

    /// One change with its document id and version, its order checked.
    fn change<'a>(
        &mut self,
        slot: (usize, usize),
        event: &'a ChangeEvent,
    ) -> Result<Change<'a>, ChangeError> {
        let target = self
            .targets
            .get(&event.table)
            .ok_or_else(|| ChangeError::UnknownTable(Arc::clone(&event.table)))?;
        let id = document_id(&target.schema.keys, &event.keys)?;
        let version = es_version(event.version(), target.schema.versions)?;
        if self
            .order
            .lost_order(&event.position.shard, event.version(), version)
        {
            metrics::counter!(names::SINK_VERSION_ORDER_LOST, "sink" => self.name.clone())
                .increment(1);
            tracing::warn!(sink = %self.name, shard = %event.position.shard,
                version = %event.version(), mapped = version,
                "a change's document version is not above the previous change's; \
                 a replay of the earlier change could win");
        }
        Ok(Change {
            slot,
            event,
            id,
            version,
        })
    }

    /// Sends `requests` at most `max_requests_in_flight` at a time; returns
    /// each request's actions with its answer.
    async fn send_all(
        &self,
        requests: Vec<Vec<Action>>,
    ) -> Vec<(Vec<Action>, Result<Bytes, RequestError>)> {
        let mut tasks = JoinSet::new();
        for (position, actions) in requests.into_iter().enumerate() {
            let client = Arc::clone(&self.client);
            let permits = Arc::clone(&self.in_flight);
            let sink = self.name.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let started = std::time::Instant::now();
                let answer = client.bulk(Bytes::from(ndjson(&actions))).await;
                record_request(&sink, started, &answer);
                (position, actions, answer)
            });
        }
        let mut answers = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(answer) => answers.push(answer),
                Err(err) => tracing::error!(sink = %self.name, "a bulk request task failed: {err}"),
            }
        }
        answers.sort_by_key(|(position, _, _)| *position);
        answers
            .into_iter()
            .map(|(_, actions, answer)| (actions, answer))
            .collect()
    }
}

impl SinkWriter for ElasticsearchSink {
    /// Deletes the table's documents whose version is below the snapshot's
    /// (items deleted while changes were lost), by a query on the metadata's
    /// `es_version`; without `metadata_field`, or with one index for
    /// several tables, it cannot tell them apart and keeps them (logged).
    async fn sweep(&mut self, table: &str, below: &SequenceNumber) -> Result<(), SinkError> {
        let (Some(field), Some(target)) = (&self.style.metadata_field, self.targets.get(table))
        else {
            tracing::warn!(sink = %self.name, %table,
                "snapshot done; documents of items deleted before it stay (set metadata_field to let snapshots remove them)");
            return Ok(());
        };
        if !self.index_template.contains("{table}") {
            tracing::warn!(sink = %self.name, %table,
                "snapshot done; documents of deleted items stay (the index is shared by several tables)");
            return Ok(());
        }
        let below = es_version(below, target.schema.versions).map_err(|err| SinkError::Fatal {
            sink: self.name.clone(),
            message: err.to_string(),
        })?;
        let index = &target.index;
        let query =
            serde_json::json!({ "range": { format!("{field}.es_version"): { "lt": below } } });
        let deleted = self
            .client
            .delete_by_query(index, &query)
            .await
            .map_err(|err| SinkError::Transient {
                sink: self.name.clone(),
                message: format!("end-of-snapshot sweep of {index}: {}", err.message),
            })?;
        tracing::info!(sink = %self.name, %index, deleted,
            "snapshot done: documents it did not see are deleted");
        Ok(())
    }

    async fn write(&mut self, batch: Batch) -> Result<Vec<Rejected>, SinkError> {
        let (chosen, mut rejected) = self.choose(&batch);
        self.prepare_mapping(&chosen).await?;
        let mut pending = self.actions(chosen, &mut rejected);
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut last_reason = String::new();
        for round in 0..=self.item_retries {
            if round > 0 {
                tracing::warn!(sink = %self.name, items = pending.len(), round,
                    reason = %last_reason, "retrying items the cluster could not take");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            let requests = split_requests(
                std::mem::take(&mut pending),
                self.bulk_max_actions,
                self.bulk_max_bytes,
            );
            for (actions, answer) in self.send_all(requests).await {
                let outcome = self.settle(actions, answer, &mut rejected)?;
                if let Some((retry, reason)) = outcome {
                    pending.extend(retry);
                    last_reason = reason;
                }
            }
            if pending.is_empty() {
                return Ok(rejected);
            }
        }
        Err(SinkError::Transient {
            sink: self.name.clone(),
            message: format!(
                "{} item(s) still not taken after {} retries: {last_reason}",
                pending.len(),
                self.item_retries
            ),
        })
    }
}

impl ElasticsearchSink {
    /// Sorts one request's answer: refused items into `rejected`, and
    /// returns the actions to send again with the last reason; a fatal
    /// answer stops the batch.
    fn settle(
        &self,
        actions: Vec<Action>,
        answer: Result<Bytes, RequestError>,
        rejected: &mut Vec<Rejected>,
    ) -> Result<Option<(Vec<Action>, String)>, SinkError> {
        let fatal = SinkError::fatal_of(&self.name);
        let body = match answer {
            Ok(body) => body,
            Err(err) if err.transient => return Ok(Some((actions, err.message))),
            Err(err) if err.status == Some(413) => {
                return Err(fatal(format!(
                    "{} (the cluster refuses requests this large: lower bulk_max_bytes)",
                    err.message
                )))
            }
            Err(err) => return Err(fatal(err.message)),
        };
        let outcomes = match item_outcomes(&body, actions.len()) {
            Ok(outcomes) => outcomes,
            // An answer that cannot be read (a proxy's page): send again.
            Err(reason) => return Ok(Some((actions, reason))),
        };
        let mut retry = Vec::new();
        let mut reason = String::new();
        // Items by result: written, stale, retried, refused.
        let mut counts = [0u64; 4];
        for (action, outcome) in actions.into_iter().zip(outcomes) {
            match outcome {
                ItemOutcome::Done => counts[0] += 1,
                ItemOutcome::Stale => counts[1] += 1,
                ItemOutcome::Retry(why) => {
                    counts[2] += 1;
                    reason = why;
                    retry.push(action);
                }
                ItemOutcome::Refused(why) => {
                    counts[3] += 1;
                    rejected.push(refusal(action.slot, why));
                }
                ItemOutcome::Fatal(why) => return Err(fatal(why)),
            }
        }
        for (result, count) in ["written", "stale", "retried", "refused"]
            .into_iter()
            .zip(counts)
        {
            if count > 0 {
                metrics::counter!(names::SINK_ITEMS, "sink" => self.name.clone(), "result" => result)
                    .increment(count);
            }
        }
        Ok((!retry.is_empty()).then_some((retry, reason)))
    }
}

/// Counts a finished request by outcome and records its time.
fn record_request(sink: &str, started: std::time::Instant, answer: &Result<Bytes, RequestError>) {
    let outcome = match answer {
        Ok(_) => "ok",
        Err(err) if err.transient => "retry",
        Err(_) => "error",
    };
    metrics::counter!(names::SINK_REQUESTS, "sink" => sink.to_owned(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!(names::SINK_REQUEST_SECONDS, "sink" => sink.to_owned())
        .record(started.elapsed().as_secs_f64());
}

/// A change to send: its place in the batch (chunk, event), document id
/// and Elasticsearch version.
struct Change<'a> {
    slot: (usize, usize),
    event: &'a ChangeEvent,
    id: String,
    version: i64,
}

/// Where a table's documents go: its key schema and index.
#[derive(Debug)]
struct Target {
    schema: TableSchema,
    index: String,
}

/// Why a change cannot become a document action: it is refused.
#[derive(Debug, thiserror::Error)]
enum ChangeError {
    /// The change's table is not one of this sink's.
    #[error("no table {0} in this pipeline")]
    UnknownTable(Arc<str>),
    /// Its keys make no document id.
    #[error(transparent)]
    Id(#[from] DocumentIdError),
    /// Its version makes no Elasticsearch version.
    #[error(transparent)]
    Version(#[from] VersionError),
}

fn refusal(slot: (usize, usize), reason: impl std::fmt::Display) -> Rejected {
    Rejected {
        chunk: slot.0,
        event: slot.1,
        reason: format!("Elasticsearch refused the document: {reason}"),
    }
}

/// The new image's attributes.
fn new_item(event: &ChangeEvent) -> Result<&crate::model::Item, String> {
    event
        .new_image
        .as_ref()
        .ok_or("the change carries no new image (the stream's view type must include new images)")?
        .item()
        .map_err(|err| format!("the new image cannot be read: {err}"))
}

/// Creates every table's index that is missing, with `index_body_file`.
async fn create_indices(
    client: &EsClient,
    env: SinkEnv<'_>,
    config: &ElasticsearchSinkConfig,
) -> Result<(), String> {
    let body = match &config.index_body_file {
        Some(path) => Some(read_index_body(path)?),
        None => None,
    };
    for table in env.tables {
        let index = index_name(&config.index, &table.name);
        let created = client
            .ensure_index(&index, body.as_ref())
            .await
            .map_err(|err| format!("cannot create index {index}: {}", err.message))?;
        if created {
            tracing::info!(sink = %env.name, %index, "created the index");
        }
    }
    Ok(())
}

/// Creates the schema history index when missing and reads the mapping
/// of every index the sink writes.
async fn open_auto_mapping(
    client: &EsClient,
    env: SinkEnv<'_>,
    config: &ElasticsearchSinkConfig,
) -> Result<AutoMapping, SinkError> {
    let fatal = SinkError::fatal_of(env.name);
    let mut reserved = vec![config.deleted_field.as_str()];
    reserved.extend(config.metadata_field.as_deref());
    let mut auto = AutoMapping::new(env.name, config, env.tables, &reserved);
    let history = config.schema_index();
    if auto.indices().any(|index| index == history) {
        return Err(fatal(format!(
            "schema_index {history:?} is also a table's index: choose another schema_index"
        )));
    }
    client
        .ensure_index(history, Some(&history_index_body()))
        .await
        .map_err(|err| {
            fatal(format!(
                "cannot create the schema history index {history}: {}",
                err.message
            ))
        })?;
    let indices: Vec<String> = auto.indices().map(str::to_owned).collect();
    for index in indices {
        auto.load(client, &index).await.map_err(|err| {
            fatal(format!(
                "reading the mapping of {index}: {}",
                crate::error_text::with_causes(&err)
            ))
        })?;
        tracing::info!(sink = %env.name, %index, "read the mapping (mapping = \"auto\")");
    }
    Ok(auto)
}

fn read_index_body(path: &std::path::Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read index_body_file {}: {err}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|err| format!("index_body_file {} is not JSON: {err}", path.display()))
}
