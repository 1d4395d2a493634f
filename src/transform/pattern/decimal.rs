//! Exact comparison of decimal numbers written as text (DynamoDB `N` values,
//! filter-pattern numbers), never through a float: DynamoDB numbers carry up
//! to 38 significant digits, more than an `f64` holds.

use std::cmp::Ordering;

/// A decimal number reduced to its sign, its significant digits and the
/// position of its decimal point: `±0.DIGITS × 10^point`.
///
/// The digits have no leading or trailing zeros, so two numbers are equal
/// exactly when their reductions are (`100`, `1E2` and `100.0` all reduce to
/// digits `1`, point 3). Zero has no digits and is never negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Decimal {
    negative: bool,
    digits: Box<[u8]>,
    point: i64,
}

/// Exponents are clamped to this magnitude: no comparison of real numbers
/// needs more, and clamping keeps the arithmetic from overflowing.
const EXPONENT_LIMIT: i64 = 1 << 40;

impl Decimal {
    /// Reads decimal text: an optional sign, digits with an optional
    /// fraction, an optional exponent (`-12.5`, `.5`, `1E+3`). `None` when
    /// the text is not such a number.
    pub(super) fn parse(text: &str) -> Option<Self> {
        let (negative, unsigned) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => (&unsigned[..at], parse_exponent(&unsigned[at + 1..])?),
            None => (unsigned, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if int.len() + frac.len() == 0 || !all_digits(int) || !all_digits(frac) {
            return None;
        }
        Some(Self::reduce(negative, int, frac, exponent))
    }

    /// Strips the zeros that carry no value and places the point.
    fn reduce(negative: bool, int: &str, frac: &str, exponent: i64) -> Self {
        let digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
        let leading = digits.iter().take_while(|d| **d == 0).count();
        let trailing = digits[leading..]
            .iter()
            .rev()
            .take_while(|d| **d == 0)
            .count();
        let significant = &digits[leading..digits.len() - trailing];
        if significant.is_empty() {
            return Self {
                negative: false,
                digits: Box::default(),
                point: 0,
            };
        }
        // Lengths are far below the clamp, so this cannot overflow.
        let point = int.len() as i64 - leading as i64 + exponent;
        Self {
            negative,
            digits: significant.into(),
            point,
        }
    }

    fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// -1, 0 or 1.
    fn signum(&self) -> i8 {
        match (self.is_zero(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }
}

/// An exponent's digits with an optional sign, clamped to [`EXPONENT_LIMIT`].
fn parse_exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.bytes().fold(0i64, |value, b| {
        (value * 10 + i64::from(b - b'0')).min(EXPONENT_LIMIT)
    });
    Some(if negative { -magnitude } else { magnitude })
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let by_sign = self.signum().cmp(&other.signum());
        if by_sign != Ordering::Equal || self.is_zero() {
            return by_sign;
        }
        // Same sign, both non-zero: compare magnitudes. With no leading
        // zeros a larger point means a larger magnitude; at equal points the
        // digit strings compare as the fractions 0.DIGITS do.
        let magnitude = self
            .point
            .cmp(&other.point)
            .then_with(|| self.digits.cmp(&other.digits));
        if self.negative {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::parse(text).unwrap_or_else(|| panic!("{text:?} is a number"))
    }

    #[test]
    fn equal_values_written_differently_are_equal() {
        for (a, b) in [
            ("100", "1E2"),
            ("100", "100.000"),
            ("100", "+1.0e+2"),
            ("0", "-0.000"),
            ("0.5", ".5"),
            ("-12.50", "-1250e-2"),
            ("0001", "1"),
        ] {
            assert_eq!(d(a), d(b), "{a} = {b}");
        }
    }

    #[test]
    fn orders_exactly_beyond_float_precision() {
        let ordered = [
            "-99999999999999999999999999999999999999",
            "-1E+3",
            "-0.000000000000000000000000000000000001",
            "0",
            "0.000000000000000000000000000000000001",
            "9.9",
            "10",
            "12345678901234567890123456789012345677",
            "12345678901234567890123456789012345678",
            "1.2345678901234567890123456789012345679E+37",
            "99999999999999999999999999999999999999",
        ];
        for pair in ordered.windows(2) {
            assert!(d(pair[0]) < d(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        for text in [
            "", "-", ".", "1e", "1e+", "abc", "1.2.3", "0x10", "NaN", "1 ",
        ] {
            assert!(Decimal::parse(text).is_none(), "{text:?}");
        }
    }

    #[test]
    fn huge_exponents_do_not_overflow() {
        assert!(d("1e99999999999999999999") > d("9e999"));
        assert!(d("1e-99999999999999999999") < d("1e-999"));
        assert!(d("1e-99999999999999999999") > d("0"));
    }
}
