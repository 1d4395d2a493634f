//! Document versions for `version_type=external_gte`: a change's engine
//! version (up to 40 digits) mapped into Elasticsearch's version range
//! (0 to 2^63−1, a Java long), keeping the order of one item's changes.
//!
//! - **DynamoDB Streams** (sequence numbers, 21–40 digits): the low 18
//!   digits. AWS documents sequence numbers only as increasing within a
//!   shard; every real one seen is a prefix, a run of zeros and a counter in
//!   the low digits that grows with time across the stream
//!   (`4421584500000000017450439091`, `6200000000002513011398` then
//!   `6300000000002513012315`), so the low 18 digits keep the order for
//!   more than the next century of counter growth. Numbers below 10^18
//!   (DynamoDB Local's) map to themselves. A snapshot's version (one above
//!   the highest sequence number seen, or 0) maps the same way, below every
//!   later change. [`OrderCheck`] counts any pair of one shard's changes
//!   whose order the mapping would lose.
//! - **Kinesis** (time versions `micros * 10^20 + tie`): `micros * 1024 +
//!   tie mod 1024`: the creation time in microseconds decides, the event-id
//!   hash breaks ties in the same microsecond; valid until the year 2255.

use std::collections::HashMap;

use crate::model::{SequenceNumber, VersionScheme, TIME_VERSION_TIE_DIGITS as TIE_DIGITS};

/// Digits of a sequence number kept as the version.
const SEQUENCE_DIGITS: usize = 18;
/// Tie values kept per microsecond (10 bits).
const TIE_RANGE: u64 = 1024;

/// Why a version cannot be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// A time version whose time does not fit (after the year 2255).
    #[error("time version {0} is beyond what an Elasticsearch version holds")]
    TooLate(String),
}

/// The Elasticsearch version of a change versioned by `version`.
pub fn es_version(version: &SequenceNumber, scheme: VersionScheme) -> Result<i64, VersionError> {
    let digits = version.digits();
    match scheme {
        VersionScheme::Sequence => {
            let low = &digits[digits.len().saturating_sub(SEQUENCE_DIGITS)..];
            // At most 18 decimal digits always fit an i64.
            Ok(low.parse::<i64>().unwrap_or(i64::MAX))
        }
        VersionScheme::Time => {
            let split = digits.len().saturating_sub(TIE_DIGITS);
            let (micros, tie) = digits.split_at(split);
            let micros: u64 = if micros.is_empty() {
                0
            } else {
                micros
                    .parse()
                    .map_err(|_| VersionError::TooLate(digits.to_owned()))?
            };
            // The tie is below 10^20; its last digits are enough for 10 bits.
            let tie_low: u64 = tie[tie.len().saturating_sub(6)..].parse().unwrap_or(0);
            micros
                .checked_mul(TIE_RANGE)
                .and_then(|m| m.checked_add(tie_low % TIE_RANGE))
                .and_then(|v| i64::try_from(v).ok())
                .ok_or_else(|| VersionError::TooLate(digits.to_owned()))
        }
    }
}

/// Watches each shard's consecutive changes for a pair whose order the
/// mapping loses (a later change mapped to a version not above the earlier
/// one's), which would let a replay of the earlier change win.
#[derive(Debug, Default)]
pub struct OrderCheck {
    last: HashMap<String, (SequenceNumber, i64)>,
}

impl OrderCheck {
    /// Records a change of `shard`; true when its mapped version is not
    /// above the previous change's although its engine version is.
    pub fn lost_order(&mut self, shard: &str, version: &SequenceNumber, mapped: i64) -> bool {
        let Some((previous, previous_mapped)) = self.last.get_mut(shard) else {
            self.last
                .insert(shard.to_owned(), (version.clone(), mapped));
            return false;
        };
        if version <= previous {
            // A replayed change: nothing to compare, nothing to keep.
            return false;
        }
        let lost = mapped <= *previous_mapped;
        *previous = version.clone();
        *previous_mapped = mapped;
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(text: &str) -> SequenceNumber {
        SequenceNumber::parse(text).unwrap()
    }

    fn map(text: &str, scheme: VersionScheme) -> i64 {
        es_version(&seq(text), scheme).unwrap()
    }

    #[test]
    fn small_sequence_numbers_map_to_themselves() {
        assert_eq!(map("000000000000000000001", VersionScheme::Sequence), 1);
        assert_eq!(map("0", VersionScheme::Sequence), 0);
        assert_eq!(
            map("999999999999999999", VersionScheme::Sequence),
            999_999_999_999_999_999
        );
    }

    #[test]
    fn real_sequence_numbers_keep_their_order() {
        // Consecutive records of real shards (AWS SDK issue threads and
        // the fixtures of AWS's own libraries).
        for run in [
            &["6200000000002513011398", "6300000000002513012315"][..],
            &[
                "4421584500000000017450439001",
                "4421584500000000017450439031",
                "4421584500000000017450439091",
                "4421584500000000017450439092",
            ][..],
            &[
                "100000000009040647000",
                "200000000009040648822",
                "300000000009040650280",
            ][..],
        ] {
            let mapped: Vec<i64> = run
                .iter()
                .map(|s| map(s, VersionScheme::Sequence))
                .collect();
            assert!(
                mapped.windows(2).all(|w| w[0] < w[1]),
                "{run:?} -> {mapped:?}"
            );
            assert!(mapped.iter().all(|v| *v >= 0));
        }
    }

    #[test]
    fn a_snapshot_version_maps_below_the_changes_after_it() {
        let highest = seq("4421584500000000017450439092");
        let snapshot = highest.successor().unwrap();
        let later = seq("4421584500000000017450439100");
        let s = es_version(&snapshot, VersionScheme::Sequence).unwrap();
        assert!(s > map("4421584500000000017450439092", VersionScheme::Sequence));
        assert!(s < es_version(&later, VersionScheme::Sequence).unwrap());
    }

    #[test]
    fn time_versions_order_by_time_then_tie() {
        let at = |micros: u64, tie: u64| {
            let version = crate::model::time_version(micros, tie).unwrap();
            es_version(&version, VersionScheme::Time).unwrap()
        };
        let now = 1_764_000_000_000_000; // 2025, in microseconds
        assert!(at(now, u64::MAX) < at(now + 1, 0));
        assert_eq!(at(now, 5), at(now, 5));
        assert_eq!(at(now, 0), i64::try_from(now * 1024).unwrap());
        // The year 2255 still fits; far beyond does not.
        assert!(at(9_000_000_000_000_000, u64::MAX) > 0);
        let too_late = crate::model::time_version(9_100_000_000_000_000, 0).unwrap();
        assert!(es_version(&too_late, VersionScheme::Time).is_err());
    }

    #[test]
    fn the_order_check_flags_only_a_lost_order() {
        let mut check = OrderCheck::default();
        assert!(!check.lost_order("s1", &seq("100"), 100));
        assert!(!check.lost_order("s1", &seq("200"), 200));
        assert!(!check.lost_order("s2", &seq("50"), 50));
        assert!(check.lost_order("s1", &seq("300"), 200));
        // A replayed (equal or older) change is not a lost order.
        assert!(!check.lost_order("s1", &seq("300"), 200));
    }
}
