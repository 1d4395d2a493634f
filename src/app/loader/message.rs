//! Loads the object one SQS message announces.

use std::io::Read as _;
use std::sync::Arc;
use std::time::SystemTime;

use aws_sdk_sqs::types::Message;
use object_store::{ObjectStoreExt, PutPayload};
use tokio_util::sync::CancellationToken;

use super::committer::{extend_visibility, InFlight, Pending};
use super::object_error::ObjectError;
use crate::app::sinks::SinkSenders;
use crate::app::store_error::StoreError;
use crate::app::stores::Stores;
use crate::app::EngineError;
use crate::config::LoaderConfig;
use crate::coordinator::{publish, AckTracker, Outgoing, ShardKey};
use crate::dead_letter::{DeadLetter, DeadLetters};
use crate::decode::decode_event_line;
use crate::model::ChangeEvent;
use crate::sink::s3::{decode_events, ObjectNotice};
use crate::stats::Stats;

/// Changes per chunk handed to the sinks.
const CHUNK: usize = 1000;

/// Handles messages one at a time.
pub struct Handler<'a> {
    pub config: &'a LoaderConfig,
    pub stores: Arc<Stores>,
    /// The queue's client.
    pub sqs: aws_sdk_sqs::Client,
    pub tracker: Arc<AckTracker>,
    pub sinks: SinkSenders,
    pub dead_letters: Arc<DeadLetters>,
    pub stats: Arc<Stats>,
    pub in_flight: InFlight,
    pub dead_objects: u64,
}

impl Handler<'_> {
    /// Starts extending the visibility of each received message; a
    /// message's token is cancelled when it is deleted or left for redelivery.
    pub fn extend_all(&self, messages: &[Message]) -> Vec<CancellationToken> {
        messages
            .iter()
            .map(|message| {
                let extender = CancellationToken::new();
                if let Some(receipt) = &message.receipt_handle {
                    extend_visibility(
                        self.sqs.clone(),
                        self.config.queue.url.clone(),
                        receipt.clone(),
                        self.config.queue.visibility_timeout,
                        extender.clone(),
                    );
                }
                extender
            })
            .collect()
    }

    /// Loads one message's object while `extender` keeps the message
    /// invisible. Errors only for what stops the loader.
    pub async fn handle(
        &mut self,
        message: Message,
        extender: CancellationToken,
    ) -> Result<(), EngineError> {
        // Deleted, or left to come back: either way no longer extended.
        let stop_unless_pending = extender.clone().drop_guard();
        let (Some(id), Some(receipt)) =
            (message.message_id.clone(), message.receipt_handle.clone())
        else {
            return Ok(());
        };
        let body = message.body.unwrap_or_default();
        let notice: ObjectNotice = match serde_json::from_str(&body) {
            Ok(notice) => notice,
            Err(err) => {
                self.local_letter("?", &format!("not an object notice: {err}"), &body);
                self.delete(&receipt).await;
                self.dead_objects += 1;
                return Ok(());
            }
        };
        let events = match self.read_object(&notice).await {
            Ok(events) => events,
            Err(err) if err.is_permanent() => {
                let reason = crate::error_text::with_causes(&err);
                self.dead_object(&notice, &reason, &body).await;
                self.delete(&receipt).await;
                return Ok(());
            }
            Err(err) => {
                let reason = crate::error_text::with_causes(&err);
                tracing::warn!(key = %notice.key, "cannot read the object now ({reason}); it will be redelivered");
                return Ok(());
            }
        };
        self.stats.record_page(events.len());
        tracing::info!(
            message_id = %id,
            bucket = %notice.bucket,
            key = %notice.key,
            changes = events.len(),
            "loading an object"
        );
        let key = ShardKey {
            stream: Arc::from("sqs"),
            shard: Arc::from(id.as_str()),
        };
        self.tracker
            .open_shard(key.clone(), Arc::from(notice.table.as_str()), None);
        self.in_flight.add(
            id,
            Pending {
                receipt,
                key: notice.key.clone(),
                extender: extender.clone(),
            },
        );
        // From here the committer stops the extender, once the message is deleted.
        stop_unless_pending.disarm();
        let mut rest = events;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(CHUNK));
            let events = std::mem::replace(&mut rest, tail);
            let Some(last) = events.last().map(|e| e.position.sequence.clone()) else {
                break;
            };
            let outgoing = Outgoing::events(Arc::from(notice.table.as_str()), events);
            publish(&self.tracker, &self.sinks, &key, last, outgoing)
                .await
                .map_err(EngineError::Publish)?;
        }
        self.tracker.mark_drained(&key);
        Ok(())
    }

    async fn read_object(&self, notice: &ObjectNotice) -> Result<Vec<ChangeEvent>, ObjectError> {
        let store = self.stores.bucket(&notice.bucket).await?;
        let path = object_store::path::Path::from(notice.key.as_str());
        let object_error = |source| StoreError::Object {
            bucket: notice.bucket.clone(),
            key: notice.key.clone(),
            source,
        };
        let bytes = store
            .get(&path)
            .await
            .map_err(object_error)?
            .bytes()
            .await
            .map_err(object_error)?;
        let events = match notice.format.as_str() {
            "jsonl.gz" => decode_jsonl_gz(&bytes)?,
            "parquet" => decode_events(bytes)?,
            other => return Err(ObjectError::UnknownFormat(other.to_owned())),
        };
        if events.len() != notice.records {
            return Err(ObjectError::Count {
                announced: notice.records,
                held: events.len(),
            });
        }
        Ok(events)
    }

    /// Copies a failed object under the dead-letter prefix with a reason file.
    async fn dead_object(&mut self, notice: &ObjectNotice, reason: &str, body: &str) {
        self.dead_objects += 1;
        tracing::error!(key = %notice.key, "object moved to the dead-letter prefix: {reason}");
        self.local_letter(
            &notice.table,
            &format!("object s3://{}/{}: {reason}", notice.bucket, notice.key),
            body,
        );
        let Ok(store) = self.stores.bucket(&notice.bucket).await else {
            return;
        };
        let prefix = &self.config.queue.dead_letter_prefix;
        let from = object_store::path::Path::from(notice.key.as_str());
        let to = object_store::path::Path::from(format!("{prefix}{}", notice.key));
        if let Err(err) = store.copy(&from, &to).await {
            tracing::warn!(key = %notice.key, "could not copy the object to the dead-letter prefix: {err}");
        }
        let reason_doc = serde_json::json!({
            "reason": reason,
            "notice": notice,
            "time": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        });
        let reason_path =
            object_store::path::Path::from(format!("{prefix}{}.reason.json", notice.key));
        if let Err(err) = store
            .put(
                &reason_path,
                PutPayload::from(reason_doc.to_string().into_bytes()),
            )
            .await
        {
            tracing::warn!(key = %notice.key, "could not write the dead-letter reason: {err}");
        }
    }

    fn local_letter(&self, table: &str, error: &str, record: &str) {
        let raw = serde_json::value::to_raw_value(record).ok();
        let Some(raw) = raw else { return };
        let letter = DeadLetter {
            table: if table == "?" { "_loader" } else { table },
            stage: "load",
            shard: "",
            sequence: None,
            error,
            record: &raw,
        };
        if let Err(err) = self.dead_letters.write(&[letter]) {
            tracing::error!("cannot write a dead letter: {err}");
        }
    }

    async fn delete(&self, receipt: &str) {
        if let Err(err) = self
            .sqs
            .delete_message()
            .queue_url(&self.config.queue.url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            tracing::warn!(
                "could not delete a message: {}",
                crate::error_text::with_causes(&err)
            );
        }
    }
}

/// The change events of a gzipped JSON Lines object.
fn decode_jsonl_gz(bytes: &[u8]) -> Result<Vec<ChangeEvent>, ObjectError> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_string(&mut text)
        .map_err(ObjectError::Gzip)?;
    let mut events = Vec::new();
    for (index, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let event = decode_event_line(line).map_err(|source| ObjectError::Line {
            line: index + 1,
            source,
        })?;
        events.push(event);
    }
    Ok(events)
}
