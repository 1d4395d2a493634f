//! `dynamo-cdc schema infer`: samples each table (a parallel Scan, plus the
//! most recent images of its DynamoDB stream read from the trim horizon,
//! bounded in calls and time) and describes its attributes with the typed
//! column each sink would make (rendered by [`super::schema_report`]).

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::args::InferFormat;
use super::schema_report::{self, TableSample};
use crate::config::{self, PipelineConfig, TableConfig};
use crate::decode::decode_record;
use crate::model::Item;
use crate::schema::SampleStats;
use crate::source::registry;
use crate::source::retry::RetryPolicy;
use crate::source::shard::ShardStart;
use crate::source::snapshot::scan::{scan_page, ScanRequest};
use crate::source::streams::{StreamsApi, TableStream};
use crate::source::SourceError;

/// Segments of the sampling Scan.
const SEGMENTS: u32 = 4;

/// Most items one Scan page asks for.
const SCAN_PAGE: u32 = 1000;

/// Most GetRecords calls spent on one table's stream.
const STREAM_CALLS: usize = 200;

/// Longest time spent reading one table's stream.
const STREAM_TIME: Duration = Duration::from_secs(15);

/// Runs `schema infer`.
pub(super) async fn infer(
    path: &std::path::Path,
    only_table: Option<&str>,
    sample: u32,
    format: InferFormat,
) -> anyhow::Result<ExitCode> {
    let pipeline = config::load_file(path)?;
    let tables = chosen_tables(&pipeline, path, only_table)?;
    let api = StreamsApi::connect(&pipeline.aws, &pipeline.source)
        .await
        .context("connecting to DynamoDB")?;
    let retry = RetryPolicy::metadata(pipeline.source.max_retry_backoff);
    let mut samples = Vec::new();
    for table in tables {
        samples.push(sample_table(&api, &retry, table, sample).await?);
    }
    match format {
        InferFormat::Toml => print!("{}", schema_report::toml_report(&pipeline, &samples)),
        InferFormat::JsonSchema => {
            for sample in &samples {
                println!("{}", schema_report::json_schema(sample));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The configured tables to sample: `only` (which must be one of them) or all.
fn chosen_tables<'a>(
    pipeline: &'a PipelineConfig,
    path: &std::path::Path,
    only: Option<&str>,
) -> anyhow::Result<Vec<&'a TableConfig>> {
    let Some(name) = only else {
        return Ok(pipeline.tables.iter().collect());
    };
    let found: Vec<_> = pipeline.tables.iter().filter(|t| t.name == name).collect();
    anyhow::ensure!(
        !found.is_empty(),
        "no table named {name:?} in {} (tables: {})",
        path.display(),
        pipeline
            .tables
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(found)
}

/// Scans `table` and reads its stream's recent images.
async fn sample_table(
    api: &StreamsApi,
    retry: &RetryPolicy,
    table: &TableConfig,
    sample: u32,
) -> anyhow::Result<TableSample> {
    let name = table.name.as_str();
    let described = match api.describe_table(name, None, true).await {
        Err(SourceError::NotFound { .. }) => anyhow::bail!(
            "table {name:?} does not exist (at {}); check [[tables]] and [aws] in the config",
            api.endpoint()
        ),
        other => other.with_context(|| format!("describing table {name:?}"))?,
    };
    let (items, mut undecodable) = scan_sample(api, retry, name, sample)
        .await
        .with_context(|| format!("scanning table {name:?}"))?;
    let mut stats = SampleStats::default();
    for item in &items {
        stats.observe(item);
    }
    let (images, bad, stream_note) = match registry::configured_stream(table) {
        Some(stream) => (
            VecDeque::new(),
            0,
            format!("changes come from Kinesis stream {stream:?}: sampled by Scan only"),
        ),
        None => stream_sample(api, table, sample as usize).await,
    };
    undecodable += bad;
    for image in &images {
        stats.observe(image);
    }
    Ok(TableSample {
        table: name.to_owned(),
        keys: described.schema.keys,
        stats,
        scanned: items.len() as u64,
        stream_images: images.len() as u64,
        undecodable,
        stream_note,
    })
}

/// Up to `sample` items of a parallel Scan (an equal share per segment),
/// and how many did not decode.
async fn scan_sample(
    api: &StreamsApi,
    retry: &RetryPolicy,
    table: &str,
    sample: u32,
) -> Result<(Vec<Item>, u64), SourceError> {
    let share = sample.div_ceil(SEGMENTS);
    let segments = (0..SEGMENTS).map(|segment| scan_segment(api, retry, table, segment, share));
    let mut items = Vec::new();
    let mut undecodable = 0;
    for (found, bad) in futures_util::future::try_join_all(segments).await? {
        items.extend(found);
        undecodable += bad;
    }
    items.truncate(sample as usize);
    Ok((items, undecodable))
}

/// Up to `quota` items of one Scan segment.
async fn scan_segment(
    api: &StreamsApi,
    retry: &RetryPolicy,
    table: &str,
    segment: u32,
    quota: u32,
) -> Result<(Vec<Item>, u64), SourceError> {
    let mut items = Vec::new();
    let mut undecodable = 0;
    let mut start: Option<String> = None;
    loop {
        let left = quota.saturating_sub(items.len() as u32);
        let request = ScanRequest {
            table,
            segment,
            total_segments: SEGMENTS,
            start_key: start.as_deref(),
            limit: Some(left.clamp(1, SCAN_PAGE)),
            consistent_read: false,
        };
        let page = retry
            .run(|| scan_page(api.tables_client(), &request))
            .await?;
        for item in page.items {
            match item {
                Ok(item) => items.push(item),
                Err(_) => undecodable += 1,
            }
        }
        match page.last_key {
            Some(key) if (items.len() as u32) < quota => start = Some(key),
            _ => return Ok((items, undecodable)),
        }
    }
}

/// The most recent `limit` images of `table`'s stream, how many records did
/// not decode, and a note on what was read. A table without a stream, or
/// a stream that cannot be read, leaves the sample to the Scan (the note
/// says why).
async fn stream_sample(
    api: &StreamsApi,
    table: &TableConfig,
    limit: usize,
) -> (VecDeque<Item>, u64, String) {
    let stream = match api
        .describe_table(&table.name, table.stream_arn.as_deref(), false)
        .await
    {
        Ok(stream) => stream,
        Err(err) => return (VecDeque::new(), 0, format!("{err}: sampled by Scan only")),
    };
    let mut reader = StreamReader {
        images: VecDeque::new(),
        limit,
        records: 0,
        undecodable: 0,
        calls: 0,
        deadline: Instant::now() + STREAM_TIME,
        cut_short: false,
    };
    match reader.read(api, &stream).await {
        Ok(()) => {
            let bound = if reader.cut_short {
                format!(
                    " (stopped at the bound of {STREAM_CALLS} GetRecords calls or {}s)",
                    STREAM_TIME.as_secs()
                )
            } else {
                String::new()
            };
            let note = format!(
                "stream {}: {} record(s) read from the trim horizon, the latest {} image(s) kept{bound}",
                stream.stream_arn,
                reader.records,
                reader.images.len()
            );
            (reader.images, reader.undecodable, note)
        }
        Err(err) => (
            reader.images,
            reader.undecodable,
            format!(
                "stream {} not read ({err}): sampled by Scan only",
                stream.stream_arn
            ),
        ),
    }
}

/// Reads a stream's shards, keeping the latest images.
struct StreamReader {
    /// Images kept, the newest shards' first.
    images: VecDeque<Item>,
    limit: usize,
    records: u64,
    undecodable: u64,
    calls: usize,
    deadline: Instant,
    cut_short: bool,
}

impl StreamReader {
    /// Reads shards from their trim horizon, the newest first (open shards,
    /// then closed ones by descending id, which starts with their creation
    /// time), until `limit` images are kept or the call or time bound is
    /// reached. Of each shard, the latest images that still fit are kept.
    async fn read(&mut self, api: &StreamsApi, stream: &TableStream) -> Result<(), SourceError> {
        let mut shards = api.list_shards(&stream.stream_arn).await?;
        shards.sort_by(|a, b| a.closed.cmp(&b.closed).then_with(|| b.id.cmp(&a.id)));
        for shard in shards {
            if self.images.len() >= self.limit {
                break;
            }
            let iterator = api
                .shard_iterator(&stream.stream_arn, &shard.id, &ShardStart::TrimHorizon)
                .await?;
            let shard_id: Arc<str> = Arc::from(shard.id.as_str());
            let mut kept = VecDeque::new();
            let finished = self
                .read_shard(api, stream, iterator, &shard_id, &mut kept)
                .await?;
            self.images.extend(kept);
            if !finished {
                self.cut_short = true;
                break;
            }
        }
        Ok(())
    }

    /// Reads one shard to its end or its first empty page (an open shard's
    /// present), keeping its latest images in `kept` (as many as still fit
    /// the limit); false when a bound stopped it.
    async fn read_shard(
        &mut self,
        api: &StreamsApi,
        stream: &TableStream,
        mut iterator: Option<String>,
        shard: &Arc<str>,
        kept: &mut VecDeque<Item>,
    ) -> Result<bool, SourceError> {
        let room = self.limit.saturating_sub(self.images.len());
        while let Some(current) = iterator {
            if self.calls >= STREAM_CALLS || Instant::now() >= self.deadline {
                return Ok(false);
            }
            self.calls += 1;
            let page = api.get_records(&current, 1000).await?;
            for raw in page.records() {
                self.records += 1;
                let event = match decode_record(raw, &stream.schema.name, shard) {
                    Ok(event) => event,
                    Err(_) => {
                        self.undecodable += 1;
                        continue;
                    }
                };
                for image in [&event.old_image, &event.new_image].into_iter().flatten() {
                    match image.item() {
                        Ok(item) => {
                            if kept.len() == room {
                                kept.pop_front();
                            }
                            kept.push_back(item.clone());
                        }
                        Err(_) => self.undecodable += 1,
                    }
                }
            }
            if page.is_empty() {
                break;
            }
            iterator = page.next_shard_iterator;
        }
        Ok(true)
    }
}
