//! How DynamoDB numbers (up to 38 significant digits) appear in documents,
//! so that none silently loses digits. The document's `_source` keeps the
//! text the sink sends; what the index makes of it depends on the mapping.
//!
//! - `exact` (default): a JSON number when an Elasticsearch `long` or
//!   `double` holds it exactly — an integer within ±(2^63−1), or at most 15
//!   significant digits with an exponent a double reaches (any such decimal
//!   comes back from a double unchanged) — otherwise a JSON string with
//!   every digit, which a `keyword` field matches exactly and a numeric
//!   field refuses (the item goes to the dead-letter file) rather than
//!   rounds.
//! - `string`: every number as a string.
//! - `number`: every number as a JSON number with all its digits; the
//!   index may round or refuse what does not fit its mapping.

use serde::Deserialize;

/// The rule for numbers in documents (see the module docs).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NumberStyle {
    /// JSON numbers when exact in a long or double, strings otherwise.
    #[default]
    Exact,
    /// Always strings.
    String,
    /// Always JSON numbers, every digit written.
    Number,
}

/// Significant digits every decimal keeps through a double.
const DOUBLE_EXACT_DIGITS: usize = 15;
/// Decimal exponents a double reaches (normal range).
const DOUBLE_EXPONENTS: std::ops::RangeInclusive<i64> = -307..=308;

/// Rewrites the numbers of plain JSON (as `model::plain_item` writes it)
/// by `style`; strings and structure are copied unchanged, and the text is
/// returned as it is when no number changes (the common case).
pub fn restyle_numbers(json: String, style: NumberStyle) -> String {
    if style == NumberStyle::Number || !needs_restyle(&json, style) {
        return json;
    }
    rewrite_numbers(&json, style)
}

/// True when some number of `json` is written differently under `style`.
fn needs_restyle(json: &str, style: NumberStyle) -> bool {
    let bytes = json.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'"' => index = string_end(bytes, index),
            b'-' | b'0'..=b'9' => {
                let end = number_end(bytes, index);
                if style == NumberStyle::String || !is_exact(&json[index..end]) {
                    return true;
                }
                index = end;
            }
            _ => index += 1,
        }
    }
    false
}

fn rewrite_numbers(json: &str, style: NumberStyle) -> String {
    let bytes = json.as_bytes();
    let mut out = String::with_capacity(json.len() + 16);
    let mut copied = 0;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'"' => index = string_end(bytes, index),
            b'-' | b'0'..=b'9' => {
                let end = number_end(bytes, index);
                let number = &json[index..end];
                if style == NumberStyle::String || !is_exact(number) {
                    out.push_str(&json[copied..index]);
                    out.push('"');
                    out.push_str(number);
                    out.push('"');
                    copied = end;
                }
                index = end;
            }
            _ => index += 1,
        }
    }
    out.push_str(&json[copied..]);
    out
}

/// Index just past the string starting at `start` (a `"`).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut index = start + 1;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => index += 2,
            b'"' => return index + 1,
            _ => index += 1,
        }
    }
    bytes.len()
}

/// Index just past the number starting at `start`.
fn number_end(bytes: &[u8], start: usize) -> usize {
    let mut index = start + 1;
    while index < bytes.len()
        && matches!(bytes[index], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
    {
        index += 1;
    }
    index
}

/// True when a long or a double holds the JSON number `text` exactly.
pub fn is_exact(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (
            &unsigned[..at],
            unsigned[at + 1..].parse::<i64>().unwrap_or(i64::MAX),
        ),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = int.chars().chain(frac.chars()).collect();
    let leading = digits.len() - digits.trim_start_matches('0').len();
    let significant = digits.trim_start_matches('0').trim_end_matches('0');
    if significant.is_empty() {
        return true; // zero
    }
    let trailing = digits.len() - leading - significant.len();
    // The value is significant × 10^scale.
    let scale = exponent
        .saturating_sub(i64::try_from(frac.len()).unwrap_or(i64::MAX))
        .saturating_add(i64::try_from(trailing).unwrap_or(0));
    if scale >= 0 && integer_fits_long(significant, scale, text.starts_with('-')) {
        return true;
    }
    let magnitude = scale.saturating_add(i64::try_from(significant.len()).unwrap_or(0)) - 1;
    significant.len() <= DOUBLE_EXACT_DIGITS && DOUBLE_EXPONENTS.contains(&magnitude)
}

/// True when `significant × 10^scale` (with the sign) is a 64-bit integer.
fn integer_fits_long(significant: &str, scale: i64, negative: bool) -> bool {
    let Ok(scale) = usize::try_from(scale) else {
        return false;
    };
    if significant.len() + scale > 19 {
        return false;
    }
    let text = format!(
        "{}{significant}{}",
        if negative { "-" } else { "" },
        "0".repeat(scale)
    );
    text.parse::<i64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_numbers_stay_numbers_and_the_rest_become_strings() {
        for (number, exact) in [
            ("0", true),
            ("-0.5", true),
            ("1.50", true),
            ("9223372036854775807", true),
            ("-9223372036854775808", true),
            ("9223372036854775808", false),
            ("12345678901234567890123456789012345678", false),
            ("123456789012345", true),
            ("1234567890.12345", true),
            ("1234567890.123456", false),
            ("0.1", true),
            ("1E+125", true),
            ("1E+400", false),
            ("1.5E-130", true),
            ("100000000000000000000000", true),
        ] {
            assert_eq!(is_exact(number), exact, "{number}");
        }
    }

    #[test]
    fn restyling_touches_numbers_only() {
        let json = r#"{"a":12345678901234567890123,"b":"1.5 \"2\" 3","c":[1,2.5e3,-7],"d":{"e":null,"f":true}}"#;
        assert_eq!(
            restyle_numbers(json.to_owned(), NumberStyle::Exact),
            r#"{"a":"12345678901234567890123","b":"1.5 \"2\" 3","c":[1,2.5e3,-7],"d":{"e":null,"f":true}}"#
        );
        assert_eq!(
            restyle_numbers(json.to_owned(), NumberStyle::String),
            r#"{"a":"12345678901234567890123","b":"1.5 \"2\" 3","c":["1","2.5e3","-7"],"d":{"e":null,"f":true}}"#
        );
        assert_eq!(restyle_numbers(json.to_owned(), NumberStyle::Number), json);
        let exact = r#"{"a":1,"b":[2.5,"x"]}"#;
        assert_eq!(restyle_numbers(exact.to_owned(), NumberStyle::Exact), exact);
    }
}
