//! DynamoDB Streams sequence numbers: decimal strings compared as exact integers.

use std::cmp::Ordering;
use std::fmt;

/// Widest sequence number accepted (AWS documents 21 to 40 digits).
pub const MAX_SEQUENCE_DIGITS: usize = 40;

/// A stream sequence number, kept as its decimal digits without leading zeros.
///
/// Ordering is numeric (shorter digit strings are smaller), so values of any
/// width up to [`MAX_SEQUENCE_DIGITS`] compare exactly; no integer or float
/// conversion is ever involved.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SequenceNumber(Box<str>);

/// Why a text is not a sequence number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceNumberError {
    /// The text was empty.
    #[error("sequence number is empty")]
    Empty,
    /// The text holds something other than ASCII digits.
    #[error("sequence number {0:?} is not a decimal number")]
    NotDecimal(String),
    /// More digits than any DynamoDB or Kinesis sequence number has.
    #[error("sequence number {0:?} has more than {MAX_SEQUENCE_DIGITS} digits")]
    TooLong(String),
}

impl SequenceNumber {
    /// Parses a decimal sequence number; leading zeros are dropped.
    pub fn parse(text: &str) -> Result<Self, SequenceNumberError> {
        if text.is_empty() {
            return Err(SequenceNumberError::Empty);
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SequenceNumberError::NotDecimal(text.to_owned()));
        }
        let trimmed = text.trim_start_matches('0');
        let digits = if trimmed.is_empty() { "0" } else { trimmed };
        if digits.len() > MAX_SEQUENCE_DIGITS {
            return Err(SequenceNumberError::TooLong(text.to_owned()));
        }
        Ok(Self(digits.into()))
    }

    /// The decimal digits, without leading zeros.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number left-padded with zeros to [`MAX_SEQUENCE_DIGITS`] digits, so
    /// that text comparison of two padded values equals numeric comparison.
    pub fn to_padded(&self) -> String {
        format!("{:0>width$}", self.0, width = MAX_SEQUENCE_DIGITS)
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SequenceNumber({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_text() {
        assert_eq!(SequenceNumber::parse(""), Err(SequenceNumberError::Empty));
        assert!(matches!(
            SequenceNumber::parse("12a"),
            Err(SequenceNumberError::NotDecimal(_))
        ));
        assert!(matches!(
            SequenceNumber::parse(&"9".repeat(41)),
            Err(SequenceNumberError::TooLong(_))
        ));
    }

    #[test]
    fn orders_wider_numbers_after_narrower_ones() {
        let small = SequenceNumber::parse("999999999999999999999").unwrap();
        let big = SequenceNumber::parse("1000000000000000000000").unwrap();
        assert!(small < big);
        assert!(small.to_padded() < big.to_padded());
        assert_eq!(big.to_padded().len(), MAX_SEQUENCE_DIGITS);
    }

    proptest! {
        #[test]
        fn order_matches_u128_order(a in any::<u128>(), b in any::<u128>()) {
            let sa = SequenceNumber::parse(&a.to_string()).unwrap();
            let sb = SequenceNumber::parse(&format!("000{b}")).unwrap();
            prop_assert_eq!(sa.cmp(&sb), a.cmp(&b));
            prop_assert_eq!(sa.to_padded().cmp(&sb.to_padded()), a.cmp(&b));
        }
    }
}
