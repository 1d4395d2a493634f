//! `dynamo-cdc load`: long-polls SQS for object notices, reads each object
//! from S3, transforms and enriches its changes, hands them to the sinks, and
//! deletes the message only after every sink acknowledged them.

mod committer;
mod message;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::dimension::Dimensions;
use super::sinks::{spawn_sinks, SinkSenders, SinkShared, SinkTasks, TableStages};
use super::stores;
use super::EngineError;
use crate::config::LoaderConfig;
use crate::coordinator::AckTracker;
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
    super::create_state_dir(&config.state_dir)?;
    let tracker = AckTracker::new();
    let shared = SinkShared::new(&config.state_dir);
    let (cancel, stats) = (shared.cancel.clone(), Arc::clone(&shared.stats));
    let dead_letters = Arc::clone(&shared.dead_letters);
    let endpoint_stop = CancellationToken::new();
    if let Some(addr) = config.metrics.listen {
        let (stats, tracker) = (Arc::clone(&shared.stats), Arc::clone(&tracker));
        crate::app::metrics_server::start(addr, stats, tracker, endpoint_stop.clone()).await?;
    }
    let _stop_endpoint = endpoint_stop.drop_guard();
    let (senders, mut sink_tasks, _dimensions) = tokio::select! {
        biased;
        () = cancel.cancelled() => {
            tracing::info!("stopped during start-up: nothing was loaded");
            return Ok(LoadSummary { objects: 0, dead_objects: 0, stats: stats.snapshot() });
        }
        started = start_sinks(config, &shared) => started?,
    };
    shared.stats.probes.health.mark_started();
    let stores = Arc::new(stores::Stores::new(&config.aws));
    let sqs = stores.sqs().await;
    let in_flight: committer::InFlight = Arc::new(committer::CommitState::default());
    let committer_stop = CancellationToken::new();
    let committer = tokio::spawn(committer::run(
        Arc::clone(&tracker),
        Arc::clone(&in_flight),
        sqs.clone(),
        config.queue.url.clone(),
        committer_stop.clone(),
    ));
    let mut handler = message::Handler {
        config,
        stores: Arc::clone(&stores),
        sqs: sqs.clone(),
        tracker: Arc::clone(&tracker),
        sinks: senders,
        dead_letters: Arc::clone(&dead_letters),
        stats: Arc::clone(&stats),
        in_flight: Arc::clone(&in_flight),
        dead_objects: 0,
    };
    let mut failure: Option<EngineError> = None;
    loop {
        if cancel.is_cancelled() {
            break;
        }
        if let Some(joined) = finished_sink(&mut sink_tasks) {
            if let Some(err) = joined {
                failure = Some(err);
            }
            cancel.cancel();
            break;
        }
        let received = tokio::select! {
            received = sqs
                .receive_message()
                .queue_url(&config.queue.url)
                .max_number_of_messages(config.queue.max_messages)
                .wait_time_seconds(i32::try_from(config.queue.wait_time.as_secs()).unwrap_or(20))
                .visibility_timeout(i32::try_from(config.queue.visibility_timeout.as_secs()).unwrap_or(60))
                .send() => received,
            () = cancel.cancelled() => break,
        };
        let messages = match received {
            Ok(output) => output.messages.unwrap_or_default(),
            Err(err) => {
                tracing::warn!(
                    "receiving from {}: {}; retrying",
                    config.queue.url,
                    crate::error_text::with_causes(&err)
                );
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = cancel.cancelled() => break,
                }
                continue;
            }
        };
        if messages.is_empty() {
            let idle = tracker.in_flight() == 0
                && in_flight.pending() == 0
                && queue_is_empty(&sqs, &config.queue.url).await;
            if options.exit_when_idle && idle {
                tracing::info!("the queue is empty and everything received is loaded");
                break;
            }
            continue;
        }
        // Every message of the receive is kept invisible from now on, not
        // only once its turn comes: one that waits behind the others'
        // objects must not reappear for another loader meanwhile.
        let extenders = handler.extend_all(&messages);
        for (message, extender) in messages.into_iter().zip(&extenders) {
            if let Err(err) = handler.handle(message, extender.clone()).await {
                failure = Some(err);
                cancel.cancel();
                break;
            }
        }
        if failure.is_some() {
            extenders.iter().for_each(CancellationToken::cancel);
        }
    }
    let dead_objects = handler.dead_objects;
    drop(handler);
    while let Some(result) = sink_tasks.join_next().await {
        if let Ok((_, Err(err))) = result {
            failure.get_or_insert(EngineError::Sink(err));
        }
    }
    // Whatever the sinks acknowledged is deleted from the queue before exit.
    committer_stop.cancel();
    if let Err(join) = committer.await {
        tracing::error!("the message committer failed: {join}");
    }
    let objects = in_flight.deleted();
    if let Some(err) = failure {
        return Err(err);
    }
    Ok(LoadSummary {
        objects,
        dead_objects,
        stats: stats.snapshot(),
    })
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
    shared: &SinkShared,
) -> Result<(SinkSenders, SinkTasks, Dimensions), EngineError> {
    shared
        .stats
        .probes
        .health
        .starting("loading the dimension tables");
    let (stages, dimensions) = TableStages::start_loader(config).await?;
    let (senders, tasks) =
        spawn_sinks(&config.sinks, &schemas(config), &config.aws, shared, stages).await?;
    Ok((senders, tasks, dimensions))
}

/// The result of a sink task that already ended, if any (without waiting).
fn finished_sink(tasks: &mut super::sinks::SinkTasks) -> Option<Option<EngineError>> {
    match tasks.try_join_next()? {
        Ok((_, Ok(()))) => Some(None),
        Ok((_, Err(err))) => Some(Some(EngineError::Sink(err))),
        Err(join) => Some(Some(EngineError::Internal(format!(
            "sink task failed: {join}"
        )))),
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
