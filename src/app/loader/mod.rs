//! `dynamo-cdc load`: long-polls SQS for object notices, reads each object
//! from S3, transforms and enriches its changes, hands them to the sinks, and
//! deletes the message only after every sink acknowledged them.

mod committer;
mod message;
mod object_error;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::dimension::Dimensions;
use super::pipeline::Pipeline;
use super::sinks::{SinkSenders, SinkTasks, TableStages};
use super::stores;
use super::EngineError;
use crate::config::LoaderConfig;
use crate::model::{KeyAttribute, KeyKind, TableSchema};
use crate::source::registry::SourceKind;
use crate::stats::StatsSnapshot;

/// How a load run behaves.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Exit once a receive finds the queue empty and everything received is loaded.
    pub exit_when_idle: bool,
}

/// What a finished load run did.
#[derive(Debug, Clone)]
pub struct LoadSummary {
    /// Objects loaded (messages deleted after the sinks acknowledged them).
    pub objects: u64,
    /// Objects moved to the dead-letter prefix.
    pub dead_objects: u64,
    /// Counters.
    pub stats: StatsSnapshot,
}

/// Runs the loader until a signal, a fatal error, or (with `exit_when_idle`) an empty queue.
pub async fn run_loader(
    config: &LoaderConfig,
    options: LoadOptions,
) -> Result<LoadSummary, EngineError> {
    let pipeline = Pipeline::open(&config.state_dir, Some(&config.metrics)).await?;
    let started = pipeline.start_up(start_sinks(config, &pipeline)).await?;
    let Some((senders, mut sink_tasks, _dimensions)) = started else {
        return Ok(LoadSummary {
            objects: 0,
            dead_objects: 0,
            stats: pipeline.shared.stats.snapshot(),
        });
    };
    pipeline.started();
    let stores = Arc::new(stores::Stores::new(&config.aws));
    let sqs = stores.sqs().await;
    let in_flight: committer::InFlight = Arc::new(committer::CommitState::default());
    let committer_stop = CancellationToken::new();
    let committer = tokio::spawn(committer::run(
        Arc::clone(&pipeline.tracker),
        Arc::clone(&in_flight),
        sqs.clone(),
        config.queue.url.clone(),
        committer_stop.clone(),
    ));
    let mut handler = message::Handler {
        config,
        stores: Arc::clone(&stores),
        sqs: sqs.clone(),
        tracker: Arc::clone(&pipeline.tracker),
        sinks: senders,
        dead_letters: Arc::clone(&pipeline.shared.dead_letters),
        stats: Arc::clone(&pipeline.shared.stats),
        in_flight: Arc::clone(&in_flight),
        dead_objects: 0,
    };
    let receiving = Receiving {
        pipeline: &pipeline,
        config,
        sqs: &sqs,
        in_flight: &in_flight,
        exit_when_idle: options.exit_when_idle,
    };
    let failure = receiving.until_done(&mut handler, &mut sink_tasks).await;
    let dead_objects = handler.dead_objects;
    drop(handler);
    let failure = pipeline
        .drain_sinks(sink_tasks, failure.into_iter().collect())
        .await;
    // Whatever the sinks acknowledged is deleted from the queue before exit.
    committer_stop.cancel();
    if let Err(join) = committer.await {
        tracing::error!("the message committer failed: {join}");
    }
    if let Some(err) = failure {
        return Err(err);
    }
    Ok(LoadSummary {
        objects: in_flight.deleted(),
        dead_objects,
        stats: pipeline.shared.stats.snapshot(),
    })
}

/// The receive loop's view of the loader.
struct Receiving<'a> {
    pipeline: &'a Pipeline,
    config: &'a LoaderConfig,
    sqs: &'a aws_sdk_sqs::Client,
    in_flight: &'a committer::InFlight,
    exit_when_idle: bool,
}

impl Receiving<'_> {
    /// Receives and handles messages until a signal, a failure (returned;
    /// everything is cancelled), a sink's end, or (with `exit_when_idle`)
    /// an empty queue with everything received loaded.
    async fn until_done(
        &self,
        handler: &mut message::Handler<'_>,
        sink_tasks: &mut SinkTasks,
    ) -> Option<EngineError> {
        let cancel = self.pipeline.cancel();
        loop {
            if cancel.is_cancelled() {
                return None;
            }
            if let Some(joined) = finished_sink(sink_tasks) {
                cancel.cancel();
                return joined;
            }
            let Some(messages) = self.receive().await? else {
                continue;
            };
            if messages.is_empty() {
                if self.exit_when_idle && self.idle().await {
                    tracing::info!("the queue is empty and everything received is loaded");
                    return None;
                }
                continue;
            }
            // Every message of the receive is kept invisible from now on, not
            // only once its turn comes: one that waits behind the others'
            // objects must not reappear for another loader meanwhile.
            let extenders = handler.extend_all(&messages);
            for (message, extender) in messages.into_iter().zip(&extenders) {
                if let Err(err) = handler.handle(message, extender.clone()).await {
                    cancel.cancel();
                    extenders.iter().for_each(CancellationToken::cancel);
                    return Some(err);
                }
            }
        }
    }

    /// One long poll: `None` on a signal, `Some(None)` after a failed
    /// receive (logged; retried after a second), else the messages.
    async fn receive(&self) -> Option<Option<Vec<aws_sdk_sqs::types::Message>>> {
        let (queue, cancel) = (&self.config.queue, self.pipeline.cancel());
        let received = tokio::select! {
            received = self.sqs
                .receive_message()
                .queue_url(&queue.url)
                .max_number_of_messages(queue.max_messages)
                .wait_time_seconds(i32::try_from(queue.wait_time.as_secs()).unwrap_or(20))
                .visibility_timeout(i32::try_from(queue.visibility_timeout.as_secs()).unwrap_or(60))
                .send() => received,
            () = cancel.cancelled() => return None,
        };
        match received {
            Ok(output) => Some(Some(output.messages.unwrap_or_default())),
            Err(err) => {
                tracing::warn!(
                    "receiving from {}: {}; retrying",
                    queue.url,
                    crate::error_text::with_causes(&err)
                );
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => Some(None),
                    () = cancel.cancelled() => None,
                }
            }
        }
    }

    /// True when nothing received is still being loaded and the queue
    /// holds no message, visible or in flight elsewhere.
    async fn idle(&self) -> bool {
        self.pipeline.tracker.in_flight() == 0
            && self.in_flight.pending() == 0
            && queue_is_empty(self.sqs, &self.config.queue.url).await
    }
}

/// The tables' schemas as the sinks see them (keys from the config).
fn schemas(config: &LoaderConfig) -> Vec<TableSchema> {
    config
        .tables
        .iter()
        .map(|t| TableSchema {
            name: Arc::from(t.name.as_str()),
            keys: t
                .keys
                .iter()
                .map(|k| KeyAttribute {
                    name: k.name.clone(),
                    kind: match k.kind.as_str() {
                        "N" => KeyKind::N,
                        "B" => KeyKind::B,
                        _ => KeyKind::S,
                    },
                })
                .collect(),
            versions: SourceKind::from_kinesis(t.kinesis).versions(),
        })
        .collect()
}

/// Start-up's waiting part: the dimension tables and the sinks.
async fn start_sinks(
    config: &LoaderConfig,
    pipeline: &Pipeline,
) -> Result<(SinkSenders, SinkTasks, Dimensions), EngineError> {
    let health = &pipeline.shared.stats.probes.health;
    health.starting("loading the dimension tables");
    let (stages, dimensions) = TableStages::start_loader(config).await?;
    let (senders, tasks) = pipeline
        .spawn_sinks(&config.sinks, &schemas(config), &config.aws, stages)
        .await?;
    Ok((senders, tasks, dimensions))
}

/// The result of a sink task that already ended, if any (without waiting).
fn finished_sink(tasks: &mut super::sinks::SinkTasks) -> Option<Option<EngineError>> {
    match tasks.try_join_next()? {
        Ok((_, Ok(()))) => Some(None),
        Ok((_, Err(err))) => Some(Some(EngineError::Sink(err))),
        Err(source) => Some(Some(EngineError::Task {
            task: "sink task",
            source,
        })),
    }
}

/// True when the queue holds no message, visible or in flight elsewhere
/// (a message another loader, or a crashed run, still holds comes back).
async fn queue_is_empty(sqs: &aws_sdk_sqs::Client, queue: &str) -> bool {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await;
    match attributes {
        Ok(output) => output
            .attributes
            .unwrap_or_default()
            .values()
            .all(|count| count == "0"),
        Err(err) => {
            tracing::warn!(
                "reading the queue's message counts: {}",
                crate::error_text::with_causes(&err)
            );
            false
        }
    }
}
