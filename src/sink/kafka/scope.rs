//! What one exactly-once transaction covers: the changes of one shard (or
//! one snapshot segment) of one table, named so that every worker that
//! may own it derives the same `transactional.id` and checkpoint group;
//! and how the checkpoint committed with its records is laid out: as
//! consumer-group offsets of the checkpoint topic's partitions, digits of
//! the position (offset metadata would be simpler, but brokers need not
//! keep it: tansu drops it).

use std::sync::Arc;

use crate::coordinator::ShardKey;
use crate::model::{SequenceNumber, MAX_SEQUENCE_DIGITS};

/// One shard's (or snapshot segment's) identity for transactions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The tracker's key: stream (or snapshot label) and shard (or segment).
    pub key: ShardKey,
    /// The source table.
    pub table: Arc<str>,
    /// For a snapshot segment, the snapshot's version: segments of two
    /// snapshots of a table are different scopes (their pages restart at 1).
    pub snapshot: Option<SequenceNumber>,
}

impl Scope {
    /// The `transactional.id` of the producer that writes this scope, also
    /// the consumer group its checkpoint is committed to:
    /// `<prefix>.<table>.<shard>.<stream hash>` for a stream shard, and
    /// `<prefix>.<table>.snapshot-<version>.<segment>` for a snapshot
    /// segment. Shard ids repeat across Kinesis streams, hence the hash of
    /// the stream (FNV-1a: stable across builds and platforms).
    pub fn transactional_id(&self, prefix: &str) -> String {
        let table = sanitize(&self.table);
        let shard = sanitize(&self.key.shard);
        match &self.snapshot {
            Some(version) => format!("{prefix}.{table}.snapshot-{}.{shard}", version.digits()),
            None => format!(
                "{prefix}.{table}.{shard}.{:016x}",
                crate::hash::fnv1a(self.key.stream.as_bytes())
            ),
        }
    }
}

/// Partitions of the checkpoint topic: a position is committed as the
/// offsets of partitions `0..CHECKPOINT_PARTITIONS`, 18 digits each, so
/// that the longest sequence number ([`MAX_SEQUENCE_DIGITS`]) fits.
pub const CHECKPOINT_PARTITIONS: usize = MAX_SEQUENCE_DIGITS.div_ceil(DIGITS_PER_OFFSET);

/// Decimal digits one offset holds (an `i64` holds every 18-digit number).
const DIGITS_PER_OFFSET: usize = 18;

/// The offsets that stand for `position`, most significant first.
pub fn checkpoint_offsets(position: &SequenceNumber) -> [i64; CHECKPOINT_PARTITIONS] {
    let width = CHECKPOINT_PARTITIONS * DIGITS_PER_OFFSET;
    let padded = format!("{:0>width$}", position.digits());
    let mut offsets = [0i64; CHECKPOINT_PARTITIONS];
    for (offset, digits) in offsets
        .iter_mut()
        .zip(padded.as_bytes().chunks(DIGITS_PER_OFFSET))
    {
        // Eighteen ASCII digits always parse into an i64.
        *offset = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or_default();
    }
    offsets
}

/// The position the committed `offsets` stand for; `Ok(None)` when none
/// was committed (every offset absent, i.e. negative).
pub fn position_of(offsets: &[i64]) -> Result<Option<SequenceNumber>, String> {
    if offsets.iter().all(|o| *o < 0) {
        return Ok(None);
    }
    if offsets.len() != CHECKPOINT_PARTITIONS
        || offsets.iter().any(|o| !(0..10i64.pow(18)).contains(o))
    {
        return Err(format!(
            "the committed offsets {offsets:?} are not a checkpoint ({CHECKPOINT_PARTITIONS} offsets of at most 18 digits)"
        ));
    }
    let text: String = offsets.iter().map(|o| format!("{o:018}")).collect();
    let digits = text.trim_start_matches('0');
    SequenceNumber::parse(if digits.is_empty() { "0" } else { digits })
        .map(Some)
        .map_err(|err| format!("the committed offsets {offsets:?}: {err}"))
}

/// `text` with every character a transactional id should not hold
/// replaced by `_` (table names may hold any character).
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') => c,
            _ => '_',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(stream: &str, shard: &str, snapshot: Option<&str>) -> Scope {
        Scope {
            key: ShardKey {
                stream: Arc::from(stream),
                shard: Arc::from(shard),
            },
            table: Arc::from("orders"),
            snapshot: snapshot.map(|v| SequenceNumber::parse(v).unwrap()),
        }
    }

    #[test]
    fn ids_are_stable_and_tell_shards_streams_and_snapshots_apart() {
        let a = scope("arn:stream/1", "shardId-000000000000", None);
        assert_eq!(
            a.transactional_id("dynamo-cdc.kafka"),
            "dynamo-cdc.kafka.orders.shardId-000000000000.ce77ef33a5294bea"
        );
        let other_stream = scope("arn:stream/2", "shardId-000000000000", None);
        assert_ne!(a.transactional_id("p"), other_stream.transactional_id("p"));
        let segment = scope("snapshot:orders", "segment-3", Some("42"));
        assert_eq!(
            segment.transactional_id("p"),
            "p.orders.snapshot-42.segment-3"
        );
        let mut odd = a.clone();
        odd.table = Arc::from("my table/€");
        assert!(odd.transactional_id("p").starts_with("p.my_table__."));
    }

    #[test]
    fn positions_round_trip_through_offsets() {
        for text in [
            "0",
            "60",
            "000000000000000000060",
            &"9".repeat(MAX_SEQUENCE_DIGITS),
        ] {
            let position = SequenceNumber::parse(text).unwrap();
            let offsets = checkpoint_offsets(&position);
            assert!(offsets.iter().all(|o| *o >= 0));
            assert_eq!(position_of(&offsets), Ok(Some(position)), "{text}");
        }
        let sixty = checkpoint_offsets(&SequenceNumber::parse("60").unwrap());
        assert_eq!(sixty[CHECKPOINT_PARTITIONS - 1], 60);
        assert_eq!(position_of(&[-1001; CHECKPOINT_PARTITIONS]), Ok(None));
        assert!(position_of(&[5]).is_err());
        let mut torn = sixty;
        torn[0] = -1;
        assert!(position_of(&torn).is_err());
    }
}
