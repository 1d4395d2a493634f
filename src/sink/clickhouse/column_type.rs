//! Mapped column types and the conversion of attribute values into them.
//! A value that does not fit its column is an error for that record, never
//! a silent NULL or default.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::model::{push_json_string, write_plain_value, AttributeValue, Number};

/// A ClickHouse type a mapped column may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// `String`: from S, N (its text) or BOOL (`true`/`false`).
    String,
    /// `Int64`: from an integral N in range.
    Int64,
    /// `UInt64`: from a non-negative integral N in range.
    UInt64,
    /// `Float64`: from N (rounded to the nearest double, as the column implies).
    Float64,
    /// `Decimal(P,S)`: from N with at most P-S integer and S fraction digits (no rounding).
    Decimal {
        /// Precision.
        precision: u32,
        /// Scale.
        scale: u32,
    },
    /// `Bool` or `UInt8`: from BOOL, or N 0/1.
    Bool {
        /// The name used in DDL (`Bool` or `UInt8`).
        name: &'static str,
    },
    /// `DateTime`: from N epoch seconds or an RFC 3339 S.
    DateTime,
    /// `Array(String)`: from SS, NS (the numbers' text), BS (base64) or an L of S.
    ArrayString,
    /// `String` holding the value as plain JSON: from any value. Only for
    /// inferred columns (`columns = "auto"`), not written in configurations.
    Json,
    /// `Nullable(T)`: NULL or a missing attribute is NULL.
    Nullable(Box<ColumnType>),
}

impl ColumnType {
    /// Parses a type name as written in the configuration.
    pub fn parse(text: &str) -> Result<Self, String> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if let Some(inner) = compact
            .strip_prefix("Nullable(")
            .and_then(|rest| rest.strip_suffix(')'))
        {
            let inner = Self::parse(inner)?;
            if matches!(inner, Self::Nullable(_) | Self::ArrayString) {
                return Err(format!("{text:?}: Nullable cannot wrap {}", inner.ddl()));
            }
            return Ok(Self::Nullable(Box::new(inner)));
        }
        if let Some(args) = compact
            .strip_prefix("Decimal(")
            .and_then(|rest| rest.strip_suffix(')'))
        {
            let (p, s) = args
                .split_once(',')
                .ok_or_else(|| format!("{text:?}: Decimal needs (precision, scale)"))?;
            let precision: u32 = p.parse().map_err(|_| format!("{text:?}: bad precision"))?;
            let scale: u32 = s.parse().map_err(|_| format!("{text:?}: bad scale"))?;
            if !(1..=38).contains(&precision) || scale > precision {
                return Err(format!(
                    "{text:?}: precision must be 1..=38 and scale at most the precision"
                ));
            }
            return Ok(Self::Decimal { precision, scale });
        }
        match compact.as_str() {
            "String" => Ok(Self::String),
            "Int64" => Ok(Self::Int64),
            "UInt64" => Ok(Self::UInt64),
            "Float64" => Ok(Self::Float64),
            "Bool" => Ok(Self::Bool { name: "Bool" }),
            "UInt8" => Ok(Self::Bool { name: "UInt8" }),
            "DateTime" => Ok(Self::DateTime),
            "Array(String)" => Ok(Self::ArrayString),
            _ => Err(format!(
                "{text:?} is not a supported type (String, Int64, UInt64, Float64, Decimal(P,S), Bool, UInt8, DateTime, Array(String), Nullable(...))"
            )),
        }
    }

    /// The type as written in DDL. `Bool` becomes `UInt8` on servers without it.
    pub fn ddl(&self) -> String {
        match self {
            Self::String => "String".into(),
            Self::Int64 => "Int64".into(),
            Self::UInt64 => "UInt64".into(),
            Self::Float64 => "Float64".into(),
            Self::Decimal { precision, scale } => format!("Decimal({precision}, {scale})"),
            Self::Bool { name } => (*name).into(),
            Self::DateTime => "DateTime".into(),
            Self::ArrayString => "Array(String)".into(),
            Self::Json => "String".into(),
            Self::Nullable(inner) => format!("Nullable({})", inner.ddl()),
        }
    }

    /// The column's value in a TabSeparated row that has none to give (a
    /// state-layout tombstone): the type's default, as ClickHouse would fill
    /// in for a missing field.
    pub fn tsv_default(&self) -> &'static str {
        match self {
            Self::String | Self::Json => "",
            Self::Int64
            | Self::UInt64
            | Self::Float64
            | Self::Decimal { .. }
            | Self::Bool { .. } => "0",
            Self::DateTime => "0000-00-00 00:00:00",
            Self::ArrayString => "[]",
            Self::Nullable(_) => "\\N",
        }
    }

    /// Appends the JSON for `value` (absent when the attribute is missing)
    /// to `out`, or says why it does not fit.
    pub fn write_json(
        &self,
        value: Option<&AttributeValue>,
        out: &mut String,
    ) -> Result<(), String> {
        let value = match (self, value) {
            (Self::Nullable(_), None | Some(AttributeValue::Null)) => {
                out.push_str("null");
                return Ok(());
            }
            (Self::Nullable(inner), Some(value)) => return inner.write_json(Some(value), out),
            (_, None) => {
                return Err(format!(
                    "the attribute is missing and the column is {} (not Nullable)",
                    self.ddl()
                ))
            }
            (_, Some(value)) => value,
        };
        let fits = match (self, value) {
            (Self::String, value) => write_string(value, out),
            (Self::Json, value) => {
                let mut plain = String::new();
                write_plain_value(value, &mut plain);
                push_json_string(out, &plain);
                true
            }
            (
                Self::Int64 | Self::UInt64 | Self::Float64 | Self::Decimal { .. },
                AttributeValue::N(n),
            ) => {
                self.write_number(n, out)?;
                true
            }
            (Self::Bool { .. }, value) => write_bool(value, out),
            (Self::DateTime, value) => write_date_time(value, out)?,
            (Self::ArrayString, value) => write_string_array(value, out)?,
            _ => false,
        };
        if !fits {
            return Err(format!(
                "a {} value does not fit a {} column",
                value.type_tag(),
                self.ddl()
            ));
        }
        Ok(())
    }

    /// Appends `n` as a value of this numeric column (Int64, UInt64,
    /// Float64 or Decimal), or says why it does not fit.
    fn write_number(&self, n: &Number, out: &mut String) -> Result<(), String> {
        match self {
            Self::Int64 => {
                let v: i64 = n
                    .as_str()
                    .parse()
                    .map_err(|_| format!("{n} is not an integer within Int64"))?;
                let _ = write!(out, "{v}");
            }
            Self::UInt64 => {
                let v: u64 = n
                    .as_str()
                    .parse()
                    .map_err(|_| format!("{n} is not an integer within UInt64"))?;
                let _ = write!(out, "{v}");
            }
            Self::Float64 => {
                let v: f64 = n
                    .as_str()
                    .parse()
                    .map_err(|_| format!("{n} is not a number"))?;
                if !v.is_finite() {
                    return Err(format!("{n} is out of the Float64 range"));
                }
                let _ = write!(out, "{v:?}");
            }
            Self::Decimal { precision, scale } => {
                out.push_str(&decimal_text(n, *precision, *scale)?);
            }
            other => return Err(format!("a N value does not fit a {} column", other.ddl())),
        }
        Ok(())
    }
}

/// Appends `value` as a String column's JSON; false when its type does not fit.
fn write_string(value: &AttributeValue, out: &mut String) -> bool {
    match value {
        AttributeValue::S(s) => push_json_string(out, s),
        AttributeValue::N(n) => push_json_string(out, n.as_str()),
        AttributeValue::Bool(b) => push_json_string(out, if *b { "true" } else { "false" }),
        AttributeValue::B(b) => push_json_string(out, &base64_text(b)),
        _ => return false,
    }
    true
}

/// Appends `value` as a Bool (or UInt8) column's JSON: a BOOL, or an N of
/// 0 or 1; false when it does not fit.
fn write_bool(value: &AttributeValue, out: &mut String) -> bool {
    match value {
        AttributeValue::Bool(b) => out.push_str(if *b { "1" } else { "0" }),
        AttributeValue::N(n) if matches!(n.as_str(), "0" | "1") => out.push_str(n.as_str()),
        _ => return false,
    }
    true
}

/// Appends `value` as a DateTime column's JSON (quoted epoch seconds) from
/// N epoch seconds or an RFC 3339 S; false when its type does not fit, an
/// error when its value does not.
fn write_date_time(value: &AttributeValue, out: &mut String) -> Result<bool, String> {
    let seconds: u32 = match value {
        AttributeValue::N(n) => n
            .as_str()
            .split('.')
            .next()
            .and_then(|whole| whole.parse().ok())
            .ok_or_else(|| format!("{n} is not epoch seconds within DateTime's range"))?,
        AttributeValue::S(s) => {
            let time = humantime::parse_rfc3339_weak(s)
                .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))?;
            time.duration_since(std::time::UNIX_EPOCH)
                .ok()
                .and_then(|d| u32::try_from(d.as_secs()).ok())
                .ok_or_else(|| format!("{s:?} is outside DateTime's range"))?
        }
        _ => return Ok(false),
    };
    let _ = write!(out, "\"{seconds}\"");
    Ok(true)
}

/// Appends `value` as an Array(String) column's JSON from SS, NS (the
/// numbers' text), BS (base64) or an L of S; false when its type does not
/// fit, an error for a list holding anything but S.
fn write_string_array(value: &AttributeValue, out: &mut String) -> Result<bool, String> {
    match value {
        AttributeValue::Ss(items) => push_string_array(out, items.iter().map(String::as_str)),
        AttributeValue::Ns(items) => push_string_array(out, items.iter().map(Number::as_str)),
        AttributeValue::Bs(items) => {
            let texts: Vec<String> = items.iter().map(|b| base64_text(b)).collect();
            push_string_array(out, texts.iter().map(String::as_str))
        }
        AttributeValue::L(items) => {
            let strings: Vec<&str> = items
                .iter()
                .map(|item| match item {
                    AttributeValue::S(s) => Ok(s.as_str()),
                    other => Err(format!(
                        "the list holds a {} value, Array(String) needs S",
                        other.type_tag()
                    )),
                })
                .collect::<Result<_, _>>()?;
            push_string_array(out, strings.into_iter());
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn base64_text(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn push_string_array<'a>(out: &mut String, items: impl Iterator<Item = &'a str>) {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, item);
    }
    out.push(']');
}

/// The plain decimal text of `n` if it fits Decimal(precision, scale) exactly.
fn decimal_text(n: &Number, precision: u32, scale: u32) -> Result<String, String> {
    decimal_text_of(n.as_str(), precision, scale)
}

/// [`decimal_text`] of a valid DynamoDB number's text.
pub(super) fn decimal_text_of(text: &str, precision: u32, scale: u32) -> Result<String, String> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (
            &unsigned[..at],
            unsigned[at + 1..]
                .parse::<i64>()
                .map_err(|_| format!("{text} has an exponent out of range"))?,
        ),
        None => (unsigned, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = format!("{int_part}{frac_part}");
    // Position of the decimal point within `digits`, after applying the exponent.
    let mut point = int_part.len() as i64 + exponent;
    if point < 0 {
        digits = format!(
            "{}{digits}",
            "0".repeat(usize::try_from(-point).unwrap_or(0))
        );
        point = 0;
    }
    let point = usize::try_from(point).map_err(|_| format!("{text} is out of range"))?;
    if digits.len() < point {
        digits.push_str(&"0".repeat(point - digits.len()));
    }
    let (int_digits, frac_digits) = digits.split_at(point);
    let int_digits = int_digits.trim_start_matches('0');
    let frac_digits = frac_digits.trim_end_matches('0');
    let max_int = (precision - scale) as usize;
    if int_digits.len() > max_int {
        return Err(format!(
            "{text} has more than {max_int} integer digits for Decimal({precision}, {scale})"
        ));
    }
    if frac_digits.len() > scale as usize {
        return Err(format!(
            "{text} has more than {scale} decimal places for Decimal({precision}, {scale})"
        ));
    }
    let mut out = String::new();
    if negative && !(int_digits.is_empty() && frac_digits.is_empty()) {
        out.push('-');
    }
    out.push_str(if int_digits.is_empty() {
        "0"
    } else {
        int_digits
    });
    if !frac_digits.is_empty() {
        out.push('.');
        out.push_str(frac_digits);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_match_serde_json() {
        for text in [
            "",
            "plain",
            "q\"b\\s",
            "tab\tnl\ncr\r",
            "\u{1}\u{8}\u{c}\u{1f}\u{7f}",
            "é日本\u{1F600}\"x",
        ] {
            let mut out = String::from("x");
            push_json_string(&mut out, text);
            assert_eq!(out[1..], serde_json::to_string(text).unwrap(), "{text:?}");
            let back: String = serde_json::from_str(&out[1..]).unwrap();
            assert_eq!(back, text);
        }
    }

    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(text).unwrap())
    }

    fn json(column: &str, value: Option<&AttributeValue>) -> Result<String, String> {
        let mut out = String::new();
        ColumnType::parse(column)
            .unwrap()
            .write_json(value, &mut out)?;
        Ok(out)
    }

    #[test]
    fn parses_types() {
        assert_eq!(
            ColumnType::parse("Decimal(38, 10)").unwrap().ddl(),
            "Decimal(38, 10)"
        );
        assert_eq!(
            ColumnType::parse("Nullable(Int64)").unwrap().ddl(),
            "Nullable(Int64)"
        );
        assert!(ColumnType::parse("Map(String, String)").is_err());
        assert!(ColumnType::parse("Decimal(40, 2)").is_err());
        assert!(ColumnType::parse("Nullable(Nullable(String))").is_err());
    }

    #[test]
    fn converts_values_that_fit() {
        assert_eq!(
            json(
                "Decimal(38, 10)",
                Some(&n("12345678901234567890.1234567891"))
            )
            .unwrap(),
            "12345678901234567890.1234567891"
        );
        assert_eq!(json("Decimal(10, 2)", Some(&n("1.5E+3"))).unwrap(), "1500");
        assert_eq!(
            json("Decimal(10, 4)", Some(&n("-25E-4"))).unwrap(),
            "-0.0025"
        );
        assert_eq!(json("Int64", Some(&n("-42"))).unwrap(), "-42");
        assert_eq!(
            json(
                "DateTime",
                Some(&AttributeValue::S("2023-11-14T22:13:20Z".into()))
            )
            .unwrap(),
            "\"1700000000\""
        );
        assert_eq!(
            json("DateTime", Some(&n("1700000000"))).unwrap(),
            "\"1700000000\""
        );
        assert_eq!(
            json(
                "Array(String)",
                Some(&AttributeValue::Ss(vec!["a".into(), "\"".into()]))
            )
            .unwrap(),
            r#"["a","\""]"#
        );
        assert_eq!(json("Nullable(Int64)", None).unwrap(), "null");
        assert_eq!(
            json("Bool", Some(&AttributeValue::Bool(true))).unwrap(),
            "1"
        );
        assert_eq!(json("String", Some(&n("1.50"))).unwrap(), "\"1.50\"");
        let mut out = String::new();
        let map = AttributeValue::M([("a".to_owned(), n("1.5"))].into_iter().collect());
        ColumnType::Json.write_json(Some(&map), &mut out).unwrap();
        assert_eq!(out, r#""{\"a\":1.5}""#);
    }

    #[test]
    fn values_that_do_not_fit_are_errors() {
        assert!(json("Decimal(10, 2)", Some(&n("1.234")))
            .unwrap_err()
            .contains("decimal places"));
        assert!(json("Decimal(5, 2)", Some(&n("12345")))
            .unwrap_err()
            .contains("integer digits"));
        assert!(json("Int64", Some(&n("1.5")))
            .unwrap_err()
            .contains("Int64"));
        assert!(json("UInt64", Some(&n("-1")))
            .unwrap_err()
            .contains("UInt64"));
        assert!(json("Int64", Some(&AttributeValue::S("7".into())))
            .unwrap_err()
            .contains("does not fit"));
        assert!(json("String", None).unwrap_err().contains("missing"));
        assert!(json("DateTime", Some(&AttributeValue::S("yesterday".into()))).is_err());
        assert!(json("Array(String)", Some(&AttributeValue::L(vec![n("1")]))).is_err());
    }
}
