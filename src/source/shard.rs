//! The seam between the shard-reading core and a stream API: what a shard
//! source (DynamoDB Streams, Kinesis) must answer, and the types they share.
//!
//! The core (`source::shards`) owns discovery, lineage, one reader per ready
//! shard, idle backoff, iterator renewal, trim handling, ordered acks and
//! checkpoints; a source only lists shards, opens iterators, reads pages and
//! decodes them.

use std::future::Future;
use std::sync::Arc;

use crate::decode::DecodeError;
use crate::future::BoxFuture;
use crate::model::{ChangeEvent, SequenceNumber};
use crate::source::SourceError;

/// One shard of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// Shard id.
    pub id: String,
    /// Parent shard ids: none for an original shard, one after a split, two
    /// after a merge (Kinesis).
    pub parents: Vec<String>,
    /// True once the shard is closed to new records.
    pub closed: bool,
}

/// Where to open a shard iterator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardStart {
    /// The oldest record still in the stream.
    TrimHorizon,
    /// Only records written from now on.
    Latest,
    /// Right after a checkpointed record.
    After(SequenceNumber),
    /// At a record (inclusive): where a snapshot recorded the stream resumes.
    At(SequenceNumber),
    /// The first record written at or after this time, in milliseconds since
    /// the Unix epoch (Kinesis only).
    AtTimestamp(i64),
}

/// What one record of a page became.
#[derive(Debug)]
pub enum Decoded {
    /// A change of a configured table.
    Event(ChangeEvent),
    /// A record of a table this pipeline does not follow (Kinesis streams
    /// can carry several tables); `table` is the record's `tableName`.
    OtherTable {
        /// The record's table name.
        table: String,
        /// The record's position in the shard.
        position: SequenceNumber,
    },
    /// A record that could not be decoded.
    Failed {
        /// The record's position, when it could be read.
        position: Option<SequenceNumber>,
        /// The record's table name, when it could be read.
        table: Option<String>,
        /// Why.
        error: DecodeError,
    },
}

impl Decoded {
    /// The record's position in its shard, when known.
    pub fn position(&self) -> Option<&SequenceNumber> {
        match self {
            Decoded::Event(event) => Some(&event.position.sequence),
            Decoded::OtherTable { position, .. } => Some(position),
            Decoded::Failed { position, .. } => position.as_ref(),
        }
    }
}

/// One page of records read from a shard.
pub trait SourcePage: Send + Sync + 'static {
    /// How many records the page holds.
    fn len(&self) -> usize;
    /// True when the page holds no record.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The iterator for the next page; `None` once a closed shard is read
    /// to its end.
    fn next_iterator(&self) -> Option<&str>;
    /// Children announced at the end of a closed shard (Kinesis sends them;
    /// DynamoDB Streams and kinesalite do not, discovery finds them then).
    fn child_shards(&self) -> &[ShardInfo] {
        &[]
    }
    /// How far the page is behind the stream's newest record, when the
    /// service says.
    fn millis_behind(&self) -> Option<i64> {
        None
    }
    /// Record `index` as JSON text, for the dead-letter file.
    fn raw_json(&self, index: usize) -> Option<String>;
    /// The position of the first record, if the page has one.
    fn first_position(&self) -> Option<SequenceNumber>;
}

/// A stream API the shard-reading core can follow.
///
/// Futures are `Send` so readers run on the multi-threaded runtime.
pub trait ShardSource: Send + Sync + 'static {
    /// Pages this source reads.
    type Page: SourcePage;

    /// Identifies the stream in checkpoints and messages (a stream ARN, or
    /// a Kinesis stream's name or ARN as configured).
    fn stream_id(&self) -> &Arc<str>;

    /// True when a child shard's positions continue its parents' and the
    /// versions are those positions (DynamoDB Streams): the core then checks
    /// the order at each handoff and fails loudly if it breaks. False when
    /// versions come from elsewhere and order across shards is not
    /// promised (Kinesis).
    fn versions_follow_positions(&self) -> bool;

    /// The shortest time between two GetRecords calls on one shard (the
    /// service's per-shard read limit); zero when the service has none to
    /// respect here.
    fn min_poll_interval(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Every shard of the stream, closed ones included.
    fn list_shards(&self) -> impl Future<Output = Result<Vec<ShardInfo>, SourceError>> + Send;

    /// Opens an iterator; `None` when the shard has nothing more to read.
    fn shard_iterator(
        &self,
        shard: &str,
        start: &ShardStart,
    ) -> impl Future<Output = Result<Option<String>, SourceError>> + Send;

    /// Reads one page at `iterator`, at most `limit` records.
    fn get_records(
        &self,
        iterator: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Self::Page, SourceError>> + Send;

    /// Decodes every record of a page read from `shard`, in order.
    fn decode(&self, page: &Self::Page, shard: &Arc<str>) -> Vec<Decoded>;
}

/// The position of the first record read (if any) and the next iterator.
pub type FirstRecord = (Option<SequenceNumber>, Option<String>);

/// What a snapshot needs of a source to record where the stream resumes:
/// an iterator at LATEST and the position of the first record that comes.
/// Object-safe, so snapshot code does not depend on the source's type.
pub trait PositionProbe: Send + Sync {
    /// The stream's id (see [`ShardSource::stream_id`]).
    fn probe_stream_id(&self) -> Arc<str>;
    /// Every shard of the stream.
    fn probe_shards(&self) -> BoxFuture<'_, Result<Vec<ShardInfo>, SourceError>>;
    /// An iterator at LATEST on `shard`.
    fn latest_iterator<'a>(
        &'a self,
        shard: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, SourceError>>;
    /// Reads one record at `iterator`: its position (if any) and the next iterator.
    fn first_record<'a>(
        &'a self,
        iterator: &'a str,
    ) -> BoxFuture<'a, Result<FirstRecord, SourceError>>;
}

impl<S: ShardSource> PositionProbe for S {
    fn probe_stream_id(&self) -> Arc<str> {
        Arc::clone(self.stream_id())
    }

    fn probe_shards(&self) -> BoxFuture<'_, Result<Vec<ShardInfo>, SourceError>> {
        Box::pin(self.list_shards())
    }

    fn latest_iterator<'a>(
        &'a self,
        shard: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, SourceError>> {
        Box::pin(async move { self.shard_iterator(shard, &ShardStart::Latest).await })
    }

    fn first_record<'a>(
        &'a self,
        iterator: &'a str,
    ) -> BoxFuture<'a, Result<FirstRecord, SourceError>> {
        Box::pin(async move {
            let page = self.get_records(iterator, 1).await?;
            Ok((
                page.first_position(),
                page.next_iterator().map(str::to_owned),
            ))
        })
    }
}
