//! `dynamo-cdc replay`: recorded stream records (files of records, pages,
//! Lambda events or dead letters) into the configured sinks at full speed,
//! with the same batching, acknowledgements and dead letters as a stream.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::pipeline::Pipeline;
use super::replay_error::ReplayError;
use super::replay_input::{read_file, Entry};
use super::sinks::{collect_sink_result, SinkSenders, SinkShared, SinkTasks, TableStages};
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
    fn into_keys(self) -> Result<Vec<KeyAttribute>, ReplayError> {
        if let Some(keys) = self.keys {
            return Ok(keys);
        }
        if self.rejected == 0 {
            return Err(ReplayError::NoRecords);
        }
        let more = match self.rejected - self.reasons.len() {
            0 => String::new(),
            more => format!(" (and {more} more)"),
        };
        Err(ReplayError::NoKeys {
            reasons: self.reasons.join("; "),
            more,
        })
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

/// Why a key search stopped reading: it found the keys, or the input
/// could not be read.
enum SearchStop {
    Found,
    Failed(ReplayError),
}

impl From<ReplayError> for SearchStop {
    fn from(err: ReplayError) -> Self {
        Self::Failed(err)
    }
}

/// The key attributes of the first record of the files whose keys can be
/// read; the error quotes the first undecodable records when none can.
fn infer_keys(files: &[PathBuf], table: &Arc<str>) -> Result<Vec<KeyAttribute>, ReplayError> {
    let mut search = KeySearch::default();
    for file in files {
        let result = read_file(file, table, 1, |entries| {
            if search.look(entries) {
                Err(SearchStop::Found)
            } else {
                Ok(())
            }
        });
        match result {
            Err(SearchStop::Found) => break,
            Err(SearchStop::Failed(err)) => return Err(err),
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
                .map_err(ReplayError::io(path))?
                .map(|entry| entry.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .map_err(ReplayError::io(path))?;
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
    let pipeline = Pipeline::open(&config.state_dir, None).await?;
    let table: Arc<str> = Arc::from(options.table.as_str());
    let files = expand(&options.files)?;
    let keys = table_keys(&options.keys, &files, &table).await?;
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
    let (stages, _dimensions) = TableStages::start_pipeline(config).await?;
    let (senders, mut sink_tasks) = pipeline
        .spawn_sinks(&config.sinks, &[schema], &config.aws, stages)
        .await?;
    let reader = Reader {
        table,
        files,
        tracker: Arc::clone(&pipeline.tracker),
        shared: pipeline.shared.clone(),
        senders,
    };
    let reading = tokio::task::spawn_blocking(move || reader.read_all());
    let mut errors: Vec<EngineError> = Vec::new();
    let bad_input = match reading.await {
        Ok(Ok(bad)) => bad,
        Ok(Err(err)) => {
            errors.push(err.into());
            0
        }
        Err(source) => {
            errors.push(EngineError::Task {
                task: "replay reader",
                source,
            });
            0
        }
    };
    wait_for_acks(&pipeline, &mut sink_tasks, &mut errors).await;
    if let Some(first) = pipeline.drain_sinks(sink_tasks, errors).await {
        return Err(first);
    }
    Ok(ReplaySummary {
        stats: pipeline.shared.stats.snapshot(),
        bad_input,
    })
}

/// The keys given, or those inferred from the first readable record.
async fn table_keys(
    given: &[KeyAttribute],
    files: &[PathBuf],
    table: &Arc<str>,
) -> Result<Vec<KeyAttribute>, EngineError> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let (files, name) = (files.to_vec(), Arc::clone(table));
    let inferred = tokio::task::spawn_blocking(move || infer_keys(&files, &name))
        .await
        .map_err(|source| EngineError::Task {
            task: "inferring the table's keys",
            source,
        })?;
    Ok(inferred?)
}

/// Waits until the sinks acknowledged every chunk handed over, a sink
/// stops, a signal comes, or `errors` holds a failure (which cancels).
async fn wait_for_acks(
    pipeline: &Pipeline,
    sink_tasks: &mut SinkTasks,
    errors: &mut Vec<EngineError>,
) {
    let (tracker, cancel) = (&pipeline.tracker, pipeline.cancel());
    while errors.is_empty() && tracker.in_flight() > 0 && !cancel.is_cancelled() {
        tokio::select! {
            () = tracker.changed() => {}
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
            joined = sink_tasks.join_next() => {
                if let Some(result) = joined {
                    collect_sink_result(result, errors);
                }
                break;
            }
        }
    }
    if !errors.is_empty() {
        cancel.cancel();
    }
}

/// Reads the replay files on a blocking thread and hands their changes to
/// the sinks, one pseudo-shard per file.
struct Reader {
    table: Arc<str>,
    files: Vec<PathBuf>,
    tracker: Arc<AckTracker>,
    shared: SinkShared,
    senders: SinkSenders,
}

impl Reader {
    /// Replays every file in order; the count of undecodable entries
    /// (dead-lettered), or why it stopped.
    fn read_all(self) -> Result<u64, ReplayError> {
        let mut bad_input = 0u64;
        for file in &self.files {
            let key = ShardKey {
                stream: Arc::from(format!("replay:{}", self.table)),
                shard: Arc::from(file.display().to_string()),
            };
            self.tracker
                .open_shard(key.clone(), Arc::clone(&self.table), None);
            let mut chunk_number = 0u64;
            read_file(file, &self.table, CHUNK, |entries| {
                if self.shared.cancel.is_cancelled() {
                    return Err(ReplayError::Stopped);
                }
                self.hand_over(&key, entries, &mut chunk_number, &mut bad_input)
            })?;
            self.tracker.mark_drained(&key);
        }
        Ok(bad_input)
    }

    /// Dead-letters a batch's undecodable entries and publishes its
    /// changes as the file's next chunk.
    fn hand_over(
        &self,
        key: &ShardKey,
        entries: Vec<Entry>,
        chunk_number: &mut u64,
        bad_input: &mut u64,
    ) -> Result<(), ReplayError> {
        let mut events = Vec::with_capacity(entries.len());
        for entry in entries {
            match entry {
                Entry::Event(event) => events.push(*event),
                Entry::Bad { raw, reason, .. } => {
                    *bad_input += 1;
                    self.shared.dead_letters.write(&[DeadLetter {
                        table: &self.table,
                        stage: "replay",
                        shard: &key.shard,
                        sequence: None,
                        error: &reason,
                        record: &raw,
                    }])?;
                }
            }
        }
        self.shared.stats.record_page(events.len());
        if events.is_empty() {
            return Ok(());
        }
        *chunk_number += 1;
        let chunk = *chunk_number;
        let sequence = SequenceNumber::parse(&chunk.to_string())
            .map_err(|source| ReplayError::ChunkNumber { chunk, source })?;
        let outgoing = Outgoing::events(Arc::clone(&self.table), events);
        publish_blocking(&self.tracker, &self.senders, key, sequence, outgoing).map_err(|source| {
            ReplayError::Publish {
                chunk,
                source: Box::new(source),
            }
        })
    }
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
