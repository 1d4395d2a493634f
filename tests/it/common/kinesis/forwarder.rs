//! The forwarder: a task that follows a DynamoDB Local table's stream and
//! writes every record into a Kinesis stream in the format DynamoDB uses for
//! a Kinesis streaming destination, standing in for that AWS feature (which
//! DynamoDB Local lacks). It can inject byte-identical duplicates, as
//! Kinesis producers' retries do.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ddb_stream::StreamFollower;
use super::record_format::StreamRecord;

/// PutRecords limits: entries and bytes (data plus partition keys) per call.
const MAX_BATCH_ENTRIES: usize = 500;
const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;
/// A duplicate goes out after this many further original records.
const DUPLICATE_LAG: u64 = 3;
/// Pause between polls of a stream with nothing new.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Pause after a failed call, and how many failures in a row end the task.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
const MAX_FAILURES: u32 = 50;
/// How long the source stream must have been quiet for [`Forwarder::wait_idle`].
const QUIET: Duration = Duration::from_secs(1);

/// How a [`Forwarder`] behaves.
#[derive(Debug, Clone, Default)]
pub struct ForwarderOptions {
    /// Sends every Nth record a second time, byte-identical, a few records
    /// later (or once the source stream is quiet).
    pub duplicate_every: Option<u32>,
    /// The `tableName` written in the records instead of the table's name,
    /// so that several tables can be presented as one.
    pub table_name: Option<String>,
    // No record mangling: tests that need malformed records put them into
    // the Kinesis stream themselves.
}

/// What the task and the test share.
struct Shared {
    forwarded: AtomicU64,
    duplicates: AtomicU64,
    progress: Mutex<Progress>,
}

struct Progress {
    /// When the last poll that found records ended.
    last_record_at: Instant,
    /// When the last poll that found nothing, with everything put, began.
    last_quiet_round: Option<Instant>,
    /// Why the task stopped, when it failed.
    failure: Option<String>,
}

impl Shared {
    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running forwarder; stopped by [`Forwarder::stop`] (or when dropped).
pub struct Forwarder {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    task: Option<JoinHandle<Result<(), String>>>,
}

impl Forwarder {
    /// Starts forwarding the stream of `table` (on the DynamoDB endpoint
    /// `dynamodb_endpoint`) into the Kinesis stream `kinesis_stream` on
    /// [`super::endpoint`], from the stream's trim horizon.
    pub fn start(
        dynamodb_endpoint: &str,
        table: &str,
        kinesis_stream: &str,
        options: ForwarderOptions,
    ) -> Forwarder {
        let shared = Arc::new(Shared {
            forwarded: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            progress: Mutex::new(Progress {
                last_record_at: Instant::now(),
                last_quiet_round: None,
                failure: None,
            }),
        });
        let cancel = CancellationToken::new();
        let task = Task {
            endpoint: dynamodb_endpoint.to_owned(),
            table: table.to_owned(),
            table_name: options.table_name.unwrap_or_else(|| table.to_owned()),
            writer: Writer::new(kinesis_stream, options.duplicate_every),
            clock: Clock::default(),
            shared: Arc::clone(&shared),
            cancel: cancel.clone(),
        };
        let task = tokio::spawn(task.run_reporting());
        Forwarder {
            shared,
            cancel,
            task: Some(task),
        }
    }

    /// Records put into Kinesis so far, duplicates included.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Records put a second time so far (injected duplicates, and records a
    /// retry sent again).
    pub fn duplicates(&self) -> u64 {
        self.shared.duplicates.load(Ordering::SeqCst)
    }

    /// Waits until the source stream has had no new record for about a
    /// second, as seen by a poll begun after this call, and every record
    /// read (and pending duplicate) has been put. Panics if the forwarder
    /// failed or `timeout` passes.
    pub async fn wait_idle(&self, timeout: Duration) {
        let called = Instant::now();
        super::super::wait_for_async("the forwarder to be idle", timeout, || async {
            let progress = self.shared.progress();
            if let Some(failure) = &progress.failure {
                panic!("the forwarder failed: {failure}");
            }
            let since = called.max(progress.last_record_at + QUIET);
            progress
                .last_quiet_round
                .is_some_and(|quiet| quiet >= since)
        })
        .await;
    }

    /// Stops the task and waits for it to end; panics if it had failed.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(failure)) => panic!("the forwarder failed: {failure}"),
                Err(join) => panic!("the forwarder task ended abnormally: {join}"),
            }
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Strictly increasing microsecond timestamps (DynamoDB Local rounds
/// ApproximateCreationDateTime to the minute, which cannot order changes).
#[derive(Default)]
struct Clock {
    last: u64,
}

impl Clock {
    fn next(&mut self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.last = now.max(self.last + 1);
        self.last
    }
}

/// One Kinesis record to put.
#[derive(Clone)]
struct Entry {
    data: Blob,
    partition_key: String,
    duplicate: bool,
}

impl Entry {
    fn size(&self) -> usize {
        self.data.as_ref().len() + self.partition_key.len()
    }

    fn request(&self) -> Result<PutRecordsRequestEntry, String> {
        PutRecordsRequestEntry::builder()
            .data(self.data.clone())
            .partition_key(&self.partition_key)
            .build()
            .map_err(|e| format!("cannot build a PutRecords entry: {e}"))
    }
}

/// The forwarding loop's state.
struct Task {
    endpoint: String,
    table: String,
    table_name: String,
    writer: Writer,
    clock: Clock,
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl Task {
    /// Runs the loop and records a failure where [`Forwarder::wait_idle`] sees it.
    async fn run_reporting(mut self) -> Result<(), String> {
        let shared = Arc::clone(&self.shared);
        let result = self.run().await;
        if let Err(failure) = &result {
            shared.progress().failure = Some(failure.clone());
        }
        result
    }

    async fn run(&mut self) -> Result<(), String> {
        let mut follower = StreamFollower::connect(&self.endpoint, &self.table).await?;
        let mut failures = 0;
        while !self.cancel.is_cancelled() {
            let round = Instant::now();
            let (records, error) = follower.poll().await;
            self.forward(&records).await?;
            if let Some(error) = error {
                failures += 1;
                if failures >= MAX_FAILURES {
                    return Err(format!("reading the stream of {}: {error}", self.table));
                }
                pause(&self.cancel, RETRY_PAUSE).await;
                continue;
            }
            failures = 0;
            if records.is_empty() {
                self.quiet_round(round).await?;
            }
        }
        Ok(())
    }

    /// Stamps and puts the records a poll returned.
    async fn forward(&mut self, records: &[StreamRecord]) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        self.shared.progress().last_record_at = Instant::now();
        let entries = self.entries(records)?;
        self.writer.send(entries, &self.shared, &self.cancel).await
    }

    /// A poll begun at `round` found nothing: put the waiting duplicates,
    /// note the quiet round, and pause before polling again.
    async fn quiet_round(&mut self, round: Instant) -> Result<(), String> {
        self.writer
            .flush_duplicates(&self.shared, &self.cancel)
            .await?;
        self.shared.progress().last_quiet_round = Some(round);
        pause(&self.cancel, IDLE_POLL).await;
        Ok(())
    }

    /// The records as Kinesis entries, stamped in read order.
    fn entries(&mut self, records: &[StreamRecord]) -> Result<Vec<Entry>, String> {
        records
            .iter()
            .map(|record| {
                let data = record.to_kinesis_json(&self.table_name, self.clock.next())?;
                Ok(Entry {
                    data: Blob::new(data),
                    partition_key: record.partition_key()?,
                    duplicate: false,
                })
            })
            .collect()
    }
}

/// Sleeps for `duration` unless cancelled first.
async fn pause(cancel: &CancellationToken, duration: Duration) {
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::time::sleep(duration) => {}
    }
}

/// Puts entries into the Kinesis stream in order, injecting duplicates.
struct Writer {
    client: aws_sdk_kinesis::Client,
    stream: String,
    duplicate_every: Option<u64>,
    originals: u64,
    /// Duplicates waiting for their turn: (originals count due, entry).
    pending: VecDeque<(u64, Entry)>,
}

impl Writer {
    fn new(stream: &str, duplicate_every: Option<u32>) -> Self {
        Self {
            client: super::client(),
            stream: stream.to_owned(),
            duplicate_every: duplicate_every.filter(|n| *n > 0).map(u64::from),
            originals: 0,
            pending: VecDeque::new(),
        }
    }

    /// The entries with the duplicates that fall due among them.
    fn plan(&mut self, entries: Vec<Entry>) -> Vec<Entry> {
        let mut out = Vec::with_capacity(entries.len() + entries.len() / 4);
        for entry in entries {
            self.originals += 1;
            if self
                .duplicate_every
                .is_some_and(|n| self.originals % n == 0)
            {
                let copy = Entry {
                    duplicate: true,
                    ..entry.clone()
                };
                self.pending
                    .push_back((self.originals + DUPLICATE_LAG, copy));
            }
            out.push(entry);
            while self
                .pending
                .front()
                .is_some_and(|(due, _)| *due <= self.originals)
            {
                out.extend(self.pending.pop_front().map(|(_, e)| e));
            }
        }
        out
    }

    /// Puts `entries` (and the duplicates due among them).
    async fn send(
        &mut self,
        entries: Vec<Entry>,
        shared: &Shared,
        cancel: &CancellationToken,
    ) -> Result<(), String> {
        let planned = self.plan(entries);
        self.put_all(&planned, shared, cancel).await
    }

    /// Puts every duplicate still waiting (the source is quiet).
    async fn flush_duplicates(
        &mut self,
        shared: &Shared,
        cancel: &CancellationToken,
    ) -> Result<(), String> {
        let due: Vec<Entry> = self.pending.drain(..).map(|(_, e)| e).collect();
        self.put_all(&due, shared, cancel).await
    }

    /// Puts entries in PutRecords batches, in order.
    async fn put_all(
        &self,
        entries: &[Entry],
        shared: &Shared,
        cancel: &CancellationToken,
    ) -> Result<(), String> {
        let mut rest = entries;
        while !rest.is_empty() {
            let len = batch_len(rest);
            self.put_batch(&rest[..len], shared, cancel).await?;
            rest = &rest[len..];
        }
        Ok(())
    }

    /// Puts one batch. When entries fail, the tail from the first failure
    /// is sent again, in order; a record of it that had gone through is
    /// then put twice, and counted as a duplicate.
    async fn put_batch(
        &self,
        batch: &[Entry],
        shared: &Shared,
        cancel: &CancellationToken,
    ) -> Result<(), String> {
        let mut already_put = vec![false; batch.len()];
        let mut offset = 0;
        let mut failures = 0;
        loop {
            let tail = &batch[offset..];
            let failed = match self.put_records(tail).await {
                Ok(failed) => failed,
                Err(error) => {
                    failures += 1;
                    if failures >= MAX_FAILURES {
                        return Err(error);
                    }
                    pause(cancel, RETRY_PAUSE).await;
                    continue;
                }
            };
            count_puts(tail, &failed, &mut already_put[offset..], shared);
            let Some(first_failed) = failed.iter().position(|f| *f) else {
                return Ok(());
            };
            offset += first_failed;
            failures += 1;
            if failures >= MAX_FAILURES {
                return Err(format!(
                    "PutRecords into {}: entries still failing after {failures} attempts",
                    self.stream
                ));
            }
            pause(cancel, RETRY_PAUSE).await;
        }
    }

    /// One PutRecords call; returns, per entry, whether it failed.
    async fn put_records(&self, entries: &[Entry]) -> Result<Vec<bool>, String> {
        let requests = entries
            .iter()
            .map(Entry::request)
            .collect::<Result<Vec<_>, _>>()?;
        let output = self
            .client
            .put_records()
            .stream_name(&self.stream)
            .set_records(Some(requests))
            .send()
            .await
            .map_err(|e| format!("PutRecords into {}: {e:?}", self.stream))?;
        if output.records.len() != entries.len() {
            return Err(format!(
                "PutRecords into {} answered for {} of {} entries",
                self.stream,
                output.records.len(),
                entries.len()
            ));
        }
        Ok(output
            .records
            .iter()
            .map(|r| r.error_code.is_some())
            .collect())
    }
}

/// How many of the first entries fit in one PutRecords call (at least one).
fn batch_len(entries: &[Entry]) -> usize {
    let mut bytes = 0;
    for (i, entry) in entries.iter().take(MAX_BATCH_ENTRIES).enumerate() {
        bytes += entry.size();
        if bytes > MAX_BATCH_BYTES && i > 0 {
            return i;
        }
    }
    entries.len().min(MAX_BATCH_ENTRIES)
}

/// Counts the entries that went through: a duplicate when injected as one
/// or put before by an earlier attempt.
fn count_puts(entries: &[Entry], failed: &[bool], already_put: &mut [bool], shared: &Shared) {
    for ((entry, failed), already) in entries.iter().zip(failed).zip(already_put) {
        if *failed {
            continue;
        }
        shared.forwarded.fetch_add(1, Ordering::SeqCst);
        if entry.duplicate || *already {
            shared.duplicates.fetch_add(1, Ordering::SeqCst);
        }
        *already = true;
    }
}
