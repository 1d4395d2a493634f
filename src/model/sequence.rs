//! Stream sequence numbers (DynamoDB Streams and Kinesis): decimal strings
//! compared as exact integers.

use std::cmp::Ordering;
use std::fmt;

/// Widest sequence number accepted: Kinesis allows up to 129 digits
/// (`0|([1-9]\d{0,128})`, real ones have 56); DynamoDB Streams documents
/// 21 to 40.
pub const MAX_SEQUENCE_DIGITS: usize = 129;

/// Widest *version* (the number that orders one item's changes in the
/// sinks): DynamoDB Streams sequence numbers and Kinesis time versions both
/// fit. Sink version columns (padded text, `numeric(40, 0)`) hold this many
/// digits, so a wider number is refused as a version when it is decoded.
pub const VERSION_DIGITS: usize = 40;

/// A stream sequence number: the text as the service wrote it (which the
/// service wants back, leading zeros included), compared as an exact integer.
///
/// Ordering and equality are numeric (leading zeros ignored, then shorter
/// digit strings are smaller), so values of any width up to
/// [`MAX_SEQUENCE_DIGITS`] compare exactly; no integer or float conversion
/// is ever involved.
#[derive(Clone)]
pub struct SequenceNumber {
    text: Box<str>,
    /// Offset of the first significant digit in `text`.
    start: u8,
}

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

/// Digits below the time in a time version.
pub const TIME_VERSION_TIE_DIGITS: usize = 20;

/// The time version `micros * 10^20 + tie`: the version of a change that
/// carries no sequence number of its own (Kinesis records, snapshot rows),
/// ordered by its creation time in microseconds, `tie` breaking ties in the
/// same microsecond. An error when `tie` is not below `10^20`.
pub fn time_version(micros: u64, tie: u64) -> Result<SequenceNumber, SequenceNumberError> {
    SequenceNumber::compose(micros, TIME_VERSION_TIE_DIGITS, tie)
}

impl SequenceNumber {
    /// Parses a decimal sequence number, keeping its text.
    pub fn parse(text: &str) -> Result<Self, SequenceNumberError> {
        if text.is_empty() {
            return Err(SequenceNumberError::Empty);
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SequenceNumberError::NotDecimal(text.to_owned()));
        }
        if text.len() > MAX_SEQUENCE_DIGITS {
            return Err(SequenceNumberError::TooLong(text.to_owned()));
        }
        let zeros = text.len() - text.trim_start_matches('0').len();
        let start = zeros.min(text.len() - 1);
        Ok(Self {
            text: text.into(),
            start: u8::try_from(start).unwrap_or(u8::MAX),
        })
    }

    /// The text as the service wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The significant digits (no leading zeros; `0` for zero).
    pub fn digits(&self) -> &str {
        &self.text[usize::from(self.start)..]
    }

    /// The number left-padded with zeros to [`VERSION_DIGITS`] digits, so
    /// that text comparison of two padded versions equals numeric comparison.
    /// Meant for versions, which never exceed [`VERSION_DIGITS`] digits
    /// (see [`SequenceNumber::fits_version`]); a wider number comes back
    /// unpadded.
    pub fn to_padded(&self) -> String {
        format!("{:0>width$}", self.digits(), width = VERSION_DIGITS)
    }

    /// True when the number can serve as a sink version (at most
    /// [`VERSION_DIGITS`] significant digits).
    pub fn fits_version(&self) -> bool {
        self.digits().len() <= VERSION_DIGITS
    }

    /// The number `value * 10^shift + low`, exactly (`low` must be below
    /// `10^shift`, else the digits overlap and an error names both).
    pub fn compose(value: u64, shift: usize, low: u64) -> Result<Self, SequenceNumberError> {
        let low_text = low.to_string();
        if low_text.len() > shift {
            return Err(SequenceNumberError::NotDecimal(format!(
                "{value}*10^{shift}+{low}"
            )));
        }
        Self::parse(&format!("{value}{low_text:0>shift$}"))
    }

    /// The next integer (`self + 1`), exactly; an error past
    /// [`MAX_SEQUENCE_DIGITS`] digits.
    pub fn successor(&self) -> Result<Self, SequenceNumberError> {
        let mut digits: Vec<u8> = self.digits().bytes().collect();
        let mut index = digits.len();
        loop {
            if index == 0 {
                digits.insert(0, b'1');
                break;
            }
            index -= 1;
            if digits[index] == b'9' {
                digits[index] = b'0';
            } else {
                digits[index] += 1;
                break;
            }
        }
        Self::parse(&String::from_utf8_lossy(&digits))
    }
}

impl PartialEq for SequenceNumber {
    fn eq(&self, other: &Self) -> bool {
        self.digits() == other.digits()
    }
}

impl Eq for SequenceNumber {}

impl std::hash::Hash for SequenceNumber {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.digits().hash(state);
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.digits(), other.digits());
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SequenceNumber({})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_is_exact() {
        let next = |t: &str| SequenceNumber::parse(t).unwrap().successor().unwrap();
        assert_eq!(next("000000000000000004144").digits(), "4145");
        assert_eq!(next("0").digits(), "1");
        assert_eq!(next("1999").digits(), "2000");
        assert_eq!(next("999").digits(), "1000");
        assert!(SequenceNumber::parse(&"9".repeat(MAX_SEQUENCE_DIGITS))
            .unwrap()
            .successor()
            .is_err());
    }
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_text() {
        assert_eq!(SequenceNumber::parse(""), Err(SequenceNumberError::Empty));
        assert!(matches!(
            SequenceNumber::parse("12a"),
            Err(SequenceNumberError::NotDecimal(_))
        ));
        assert!(matches!(
            SequenceNumber::parse(&"9".repeat(MAX_SEQUENCE_DIGITS + 1)),
            Err(SequenceNumberError::TooLong(_))
        ));
    }

    #[test]
    fn keeps_the_text_but_compares_the_value() {
        let padded = SequenceNumber::parse("000000000000000004144").unwrap();
        assert_eq!(padded.as_str(), "000000000000000004144");
        assert_eq!(padded.digits(), "4144");
        assert_eq!(padded, SequenceNumber::parse("4144").unwrap());
        assert!(padded < SequenceNumber::parse("4145").unwrap());
        assert_eq!(SequenceNumber::parse("000").unwrap().digits(), "0");
    }

    #[test]
    fn orders_wider_numbers_after_narrower_ones() {
        let small = SequenceNumber::parse("999999999999999999999").unwrap();
        let big = SequenceNumber::parse("1000000000000000000000").unwrap();
        assert!(small < big);
        assert!(small.to_padded() < big.to_padded());
        assert_eq!(big.to_padded().len(), VERSION_DIGITS);
    }

    #[test]
    fn kinesis_widths_parse_and_compare() {
        let a = SequenceNumber::parse("49590338271490256608559692538361571095921575989136588898")
            .unwrap();
        let b = SequenceNumber::parse("49590338271490256608559692540925702759324208523137515618")
            .unwrap();
        assert!(a < b);
        assert!(!a.fits_version());
        let widest = SequenceNumber::parse(&format!("1{}", "0".repeat(128))).unwrap();
        assert!(b < widest);
    }

    #[test]
    fn compose_places_the_low_digits() {
        let v = SequenceNumber::compose(1_732_000_000_000_000, 20, 42).unwrap();
        assert_eq!(v.digits(), "173200000000000000000000000000000042");
        assert!(v.fits_version());
        assert!(SequenceNumber::compose(1, 2, 100).is_err());
        assert!(
            SequenceNumber::compose(5, 20, u64::MAX).unwrap()
                < SequenceNumber::compose(6, 20, 0).unwrap()
        );
    }

    proptest! {
        #[test]
        fn order_matches_u128_order(a in any::<u128>(), b in any::<u128>()) {
            let sa = SequenceNumber::parse(&a.to_string()).unwrap();
            let sb = SequenceNumber::parse(&format!("{b:0>40}")).unwrap();
            prop_assert_eq!(sa.cmp(&sb), a.cmp(&b));
            prop_assert_eq!(sa.to_padded().cmp(&sb.to_padded()), a.cmp(&b));
        }
    }
}
