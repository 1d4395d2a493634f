//! One text per numeric value: DynamoDB accepts `1.50`, `15E-1` and `1.5`
//! for the same number, and a stream record's `Keys` can repeat a request's
//! text as written while the images hold the normalised one. Anything
//! that identifies an item by its key text (a Kafka record key, hence its
//! partition) needs the same text for every change of the item.

use super::value::Number;

/// Numbers whose decimal exponent lies within this many places of the
/// point are written plainly (`1500`, `0.0015`); others in scientific form.
const PLAIN_EXPONENT_LIMIT: i64 = 40;

impl Number {
    /// The canonical text of the value: no sign for zero, no leading or
    /// trailing zeros, no `+`; plain notation (`1.5`, `-0.25`, `100`) for
    /// magnitudes between 1E-40 and 1E+40, else `d.dddE±x`. Equal values
    /// give equal text, and the usual integer and decimal forms are unchanged.
    pub fn canonical_text(&self) -> String {
        let Some((negative, digits, exponent)) = decompose(self.as_str()) else {
            return "0".to_owned();
        };
        let sign = if negative { "-" } else { "" };
        let count = digits.len() as i64;
        let magnitude = exponent + count - 1;
        if magnitude.abs() > PLAIN_EXPONENT_LIMIT {
            let (first, rest) = digits.split_at(1);
            let point = if rest.is_empty() { "" } else { "." };
            return format!("{sign}{first}{point}{rest}E{magnitude}");
        }
        if exponent >= 0 {
            return format!("{sign}{digits}{}", "0".repeat(exponent as usize));
        }
        let fraction = (-exponent) as usize;
        if digits.len() > fraction {
            let (whole, part) = digits.split_at(digits.len() - fraction);
            format!("{sign}{whole}.{part}")
        } else {
            format!("{sign}0.{}{digits}", "0".repeat(fraction - digits.len()))
        }
    }

    /// True when [`Number::canonical_text`] is the text as held (checked
    /// without building it for the usual integer, which is canonical).
    pub fn is_canonical(&self) -> bool {
        let text = self.as_str();
        let digits = text.strip_prefix('-').unwrap_or(text);
        let plain_integer = !digits.is_empty()
            && digits.len() <= PLAIN_EXPONENT_LIMIT as usize
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        plain_integer || text == "0" || self.canonical_text() == text
    }
}

/// How a number sits in a fixed-point column: the digits it needs before
/// the point and after it (`-12.50` needs 2 and 1; `1E3` needs 4 and 0; zero
/// needs 0 and 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecimalShape {
    /// Digits before the point.
    pub integer_digits: u32,
    /// Digits after the point (the scale).
    pub scale: u32,
}

impl Number {
    /// The digits the value needs before and after the point (found
    /// without allocating: schema inference asks it of every number).
    pub fn decimal_shape(&self) -> DecimalShape {
        decimal_shape_of(self.as_str())
    }
}

/// [`Number::decimal_shape`] of a valid DynamoDB number's text.
pub fn decimal_shape_of(text: &str) -> DecimalShape {
    {
        let text = text.as_bytes();
        let unsigned = match text.first() {
            Some(b'-' | b'+') => &text[1..],
            _ => text,
        };
        let (mantissa, exponent) = match unsigned.iter().position(|b| matches!(b, b'e' | b'E')) {
            Some(at) => (
                &unsigned[..at],
                std::str::from_utf8(&unsigned[at + 1..])
                    .ok()
                    .and_then(|e| e.parse::<i64>().ok())
                    .unwrap_or(0),
            ),
            None => (unsigned, 0),
        };
        let whole = mantissa
            .iter()
            .position(|b| *b == b'.')
            .unwrap_or(mantissa.len());
        // Positions in the digit run (the point skipped) of the first and
        // last non-zero digits.
        let digits = mantissa.iter().filter(|b| **b != b'.');
        let mut first = None;
        let mut last = 0;
        for (at, digit) in digits.enumerate() {
            if *digit != b'0' {
                first.get_or_insert(at);
                last = at;
            }
        }
        let Some(first) = first else {
            return DecimalShape {
                integer_digits: 0,
                scale: 0,
            };
        };
        let point = whole as i64 + exponent;
        let clamp = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        DecimalShape {
            integer_digits: clamp(point - first as i64),
            scale: clamp(last as i64 + 1 - point),
        }
    }
}

/// `text` (a valid DynamoDB number) as sign, significant digits without
/// leading or trailing zeros, and the power of ten of the last digit;
/// `None` for zero.
fn decompose(text: &str) -> Option<(bool, String, i64)> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (
            &unsigned[..at],
            unsigned[at + 1..].parse::<i64>().unwrap_or(0),
        ),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all: String = whole.chars().chain(fraction.chars()).collect();
    let significant = all.trim_start_matches('0');
    let trimmed = significant.trim_end_matches('0');
    if trimmed.is_empty() {
        return None;
    }
    let trailing = (significant.len() - trimmed.len()) as i64;
    let exponent = exponent - fraction.len() as i64 + trailing;
    Some((negative, trimmed.to_owned(), exponent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        Number::parse(text).unwrap().canonical_text()
    }

    #[test]
    fn equal_values_get_one_text() {
        for same in ["1.5", "1.50", "15E-1", "+1.5", "0.15e1", "00001.5000"] {
            assert_eq!(canonical(same), "1.5", "{same}");
        }
        for same in ["100", "1E2", "1E+2", "100.000", "0.1E3"] {
            assert_eq!(canonical(same), "100", "{same}");
        }
        for zero in ["0", "-0", "0.000", "0E10", "-0.0E-5"] {
            assert_eq!(canonical(zero), "0", "{zero}");
        }
        assert_eq!(canonical("-0.0025"), "-0.0025");
        assert_eq!(canonical("-25E-4"), "-0.0025");
    }

    #[test]
    fn usual_forms_are_kept_and_extremes_go_scientific() {
        for usual in [
            "42",
            "-7",
            "3.14159",
            "12345678901234567890123456789012345678",
        ] {
            assert_eq!(canonical(usual), usual);
            assert!(Number::parse(usual).unwrap().is_canonical());
        }
        assert_eq!(canonical("1E-130"), "1E-130");
        assert_eq!(
            canonical("0.000000000000000000000000000000000000000000012"),
            "1.2E-44"
        );
        assert_eq!(canonical("-9.99E+125"), "-9.99E125");
        assert_eq!(canonical("1E40"), format!("1{}", "0".repeat(40)));
        assert_eq!(canonical("1E41"), "1E41");
        assert!(!Number::parse("1.50").unwrap().is_canonical());
    }

    #[test]
    fn shapes_count_digits_either_side_of_the_point() {
        let shape = |text: &str| {
            let s = Number::parse(text).unwrap().decimal_shape();
            (s.integer_digits, s.scale)
        };
        assert_eq!(shape("-12.50"), (2, 1));
        assert_eq!(shape("1E3"), (4, 0));
        assert_eq!(shape("0"), (0, 0));
        assert_eq!(shape("0.0025"), (0, 4));
        assert_eq!(shape("1E-130"), (0, 130));
        assert_eq!(shape("9.99E125"), (126, 0));
        assert_eq!(shape("-0.0"), (0, 0));
        assert_eq!(shape("00120.0500"), (3, 2));
        assert_eq!(shape("12.5E-3"), (0, 4));
        assert_eq!(shape("0.5E1"), (1, 0));
    }
}
