//! `dynamo-cdc replay`: recorded stream records (files of records, pages,
//! Lambda events or dead letters) into the configured sinks at full speed,
//! with the same batching, acknowledgements and dead letters as a stream.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::replay_input::{read_file, Entry};
use super::sinks::{collect_sink_result, pick_error, spawn_sinks, SinkShared, TableStages};
use super::EngineError;
use crate::config::PipelineConfig;
use crate::coordinator::{publish_blocking, AckTracker, Outgoing, ShardKey};
use crate::dead_letter::DeadLetter;
use crate::model::{Item, KeyAttribute, KeyKind, SequenceNumber, TableSchema};
use crate::source::registry::SourceKind;
use crate::stats::StatsSnapshot;

/// Changes per chunk handed to the sinks (each sink queues 8 chunks, so
/// this bounds the memory a fast reader can fill).
const CHUNK: usize = 500;

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The source table the records belong to.
    pub table: String,
    /// Its key attributes, partition key first; inferred from the first
    /// record's `Keys` (in name order) when empty.
    pub keys: Vec<KeyAttribute>,
    /// Input files (or directories of them), replayed in order.
    pub files: Vec<PathBuf>,
}

/// What a replay did.
#[derive(Debug, Clone)]
pub struct ReplaySummary {
    /// Counters (records read, per-sink writes).
    pub stats: StatsSnapshot,
    /// Input entries that could not be decoded (in the dead-letter file).
    pub bad_input: u64,
}

fn replay_error(message: impl Into<String>) -> EngineError {
    EngineError::Replay(message.into())
}

/// How many reasons for undecodable records an inference failure quotes.
const QUOTED_REASONS: usize = 3;

/// What key inference has seen so far: the keys once found, and the
/// records it could not read before that.
#[derive(Default)]
struct KeySearch {
    keys: Option<Vec<KeyAttribute>>,
    reasons: Vec<String>,
    rejected: usize,
}

impl KeySearch {
    /// Looks at `entries` in order; true once a record gave its keys (a
    /// decoded one, or an undecodable one whose keys could be read).
    fn look(&mut self, entries: Vec<Entry>) -> bool {
        for entry in entries {
            let keys = match entry {
                Entry::Event(event) => event.keys,
                Entry::Bad { reason, keys, .. } => {
                    self.rejected += 1;
                    if self.reasons.len() < QUOTED_REASONS {
                        self.reasons.push(reason);
                    }
                    match keys {
                        Some(keys) => keys,
                        None => continue,
                    }
                }
            };
            self.keys = Some(key_attributes(&keys));
            return true;
        }
        false
    }

    /// The keys, or why there are none: the first undecodable records.
    fn into_keys(self) -> Result<Vec<KeyAttribute>, EngineError> {
        if let Some(keys) = self.keys {
            return Ok(keys);
        }
        const HINT: &str = "the table's keys are unknown (pass --keys pk:S,sk:N)";
        if self.rejected == 0 {
            return Err(replay_error(format!("the input holds no record: {HINT}")));
        }
        let more = match self.rejected - self.reasons.len() {
            0 => String::new(),
            more => format!(" (and {more} more)"),
        };
        Err(replay_error(format!(
            "no record in the input could be decoded: {}{more}; so {HINT}",
            self.reasons.join("; ")
        )))
    }
}

/// Key attributes in name order, typed by their values.
fn key_attributes(keys: &Item) -> Vec<KeyAttribute> {
    keys.iter()
        .map(|(name, value)| KeyAttribute {
            name: name.clone(),
            kind: match value.type_tag() {
                "N" => KeyKind::N,
                "B" => KeyKind::B,
                _ => KeyKind::S,
            },
        })
        .collect()
}

/// The key attributes of the first record of the files whose keys can be
/// read; the error quotes the first undecodable records when none can.
fn infer_keys(files: &[PathBuf], table: &Arc<str>) -> Result<Vec<KeyAttribute>, EngineError> {
    const FOUND: &str = "\u{0}found";
    let mut search = KeySearch::default();
    for file in files {
        let result = read_file(file, table, 1, |entries| {
            if search.look(entries) {
                Err(FOUND.to_owned())
            } else {
                Ok(())
            }
        });
        match result {
            Err(message) if message == FOUND => break,
            Err(message) => return Err(replay_error(message)),
            Ok(()) => {}
        }
    }
    search.into_keys()
}

/// The input files: each file as given, each directory's files (recursively)
/// in name order.
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, EngineError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inner: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| replay_error(format!("{}: {e}", path.display())))?
                .map(|entry| entry.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .map_err(|e| replay_error(format!("{}: {e}", path.display())))?;
            inner.sort();
            files.extend(expand(&inner)?);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Replays the files into the sinks; returns once every change is
/// acknowledged by every sink (or a signal or a sink failure stops it).
pub async fn run_replay(
    config: &PipelineConfig,
    options: ReplayOptions,
) -> Result<ReplaySummary, EngineError> {
    super::create_state_dir(&config.state_dir)?;
    let table: Arc<str> = Arc::from(options.table.as_str());
    let options = ReplayOptions {
        files: expand(&options.files)?,
        ..options
    };
    let keys = if options.keys.is_empty() {
        let files = options.files.clone();
        let name = Arc::clone(&table);
        tokio::task::spawn_blocking(move || infer_keys(&files, &name))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??
    } else {
        options.keys.clone()
    };
    tracing::info!(table = %table, keys = ?keys.iter().map(|k| &k.name).collect::<Vec<_>>(), "replaying");
    // A table not in the config replays as a DynamoDB stream's.
    let source = config
        .tables
        .iter()
        .find(|t| *t.name == *table)
        .map_or(SourceKind::DynamoDbStreams, SourceKind::of);
    let schema = TableSchema {
        name: Arc::clone(&table),
        keys,
        versions: source.versions(),
    };
    let shared = SinkShared::new(&config.state_dir);
    let (cancel, stats) = (shared.cancel.clone(), Arc::clone(&shared.stats));
    let dead_letters = Arc::clone(&shared.dead_letters);
    let (stages, _dimensions) = TableStages::start_pipeline(config).await?;
    let (senders, mut sink_tasks) =
        spawn_sinks(&config.sinks, &[schema], &config.aws, &shared, stages).await?;
    let tracker = AckTracker::new();
    let reader = {
        let (tracker, stats, cancel) = (Arc::clone(&tracker), Arc::clone(&stats), cancel.clone());
        let (table, files) = (Arc::clone(&table), options.files.clone());
        tokio::task::spawn_blocking(move || {
            let mut bad_input = 0u64;
            for file in &files {
                let key = ShardKey {
                    stream: Arc::from(format!("replay:{table}")),
                    shard: Arc::from(file.display().to_string()),
                };
                tracker.open_shard(key.clone(), Arc::clone(&table), None);
                let mut chunk_number = 0u64;
                read_file(file, &table, CHUNK, |entries| {
                    if cancel.is_cancelled() {
                        return Err("stopped by a signal".into());
                    }
                    let mut events = Vec::with_capacity(entries.len());
                    for entry in entries {
                        match entry {
                            Entry::Event(event) => events.push(*event),
                            Entry::Bad { raw, reason, .. } => {
                                bad_input += 1;
                                dead_letters
                                    .write(&[DeadLetter {
                                        table: &table,
                                        stage: "replay",
                                        shard: &key.shard,
                                        sequence: None,
                                        error: &reason,
                                        record: &raw,
                                    }])
                                    .map_err(|e| e.to_string())?;
                            }
                        }
                    }
                    stats.record_page(events.len());
                    if events.is_empty() {
                        return Ok(());
                    }
                    chunk_number += 1;
                    let sequence = SequenceNumber::parse(&chunk_number.to_string())
                        .map_err(|e| e.to_string())?;
                    let outgoing = Outgoing::events(Arc::clone(&table), events);
                    publish_blocking(&tracker, &senders, &key, sequence, outgoing)
                        .map_err(|e| e.to_string())
                })?;
                tracker.mark_drained(&key);
            }
            Ok::<u64, String>(bad_input)
        })
    };
    let mut errors: Vec<EngineError> = Vec::new();
    let bad_input = match reader.await {
        Ok(Ok(bad)) => bad,
        Ok(Err(message)) => {
            errors.push(replay_error(message));
            0
        }
        Err(join) => {
            errors.push(EngineError::Internal(format!(
                "replay reader failed: {join}"
            )));
            0
        }
    };
    // Every chunk is handed over; wait until every sink acknowledged it.
    while errors.is_empty() && tracker.in_flight() > 0 && !cancel.is_cancelled() {
        tokio::select! {
            () = tracker.changed() => {}
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
            joined = sink_tasks.join_next() => {
                if let Some(result) = joined {
                    collect_sink_result(result, &mut errors);
                }
                break;
            }
        }
    }
    if !errors.is_empty() {
        cancel.cancel();
    }
    // The reader dropped its senders: the sinks drain and stop.
    while let Some(result) = sink_tasks.join_next().await {
        collect_sink_result(result, &mut errors);
    }
    if let Some(first) = pick_error(errors) {
        return Err(first);
    }
    Ok(ReplaySummary {
        stats: stats.snapshot(),
        bad_input,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttributeValue, Number};

    fn bad(reason: &str, keys: Option<Item>) -> Entry {
        Entry::Bad {
            raw: serde_json::value::RawValue::from_string("{}".into()).expect("JSON"),
            reason: reason.to_owned(),
            keys,
        }
    }

    #[test]
    fn keys_come_from_the_first_record_that_has_readable_keys() {
        let keys = Item::from([
            (
                "sk".to_owned(),
                AttributeValue::N(Number::parse("1").expect("number")),
            ),
            ("pk".to_owned(), AttributeValue::S("a".into())),
        ]);
        let mut search = KeySearch::default();
        assert!(!search.look(vec![bad("f line 1: not JSON", None)]));
        assert!(search.look(vec![bad("f line 2: Kinesis-format record", Some(keys))]));
        let found = search.into_keys().expect("keys");
        let names: Vec<(&str, KeyKind)> = found.iter().map(|k| (k.name.as_str(), k.kind)).collect();
        assert_eq!(names, [("pk", KeyKind::S), ("sk", KeyKind::N)]);
    }

    #[test]
    fn without_keys_the_error_quotes_the_first_reasons() {
        let mut search = KeySearch::default();
        let entries = (1..=5)
            .map(|n| bad(&format!("f record {n}: broken"), None))
            .collect();
        assert!(!search.look(entries));
        let message = search.into_keys().expect_err("no keys").to_string();
        assert!(
            message.contains("no record in the input could be decoded: f record 1: broken; f record 2: broken; f record 3: broken (and 2 more)"),
            "{message}"
        );
        assert!(message.contains("pass --keys"), "{message}");
        let empty = KeySearch::default()
            .into_keys()
            .expect_err("no keys")
            .to_string();
        assert!(empty.contains("the input holds no record"), "{empty}");
    }
}
