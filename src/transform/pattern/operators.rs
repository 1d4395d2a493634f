//! The leaf conditions of a pattern: exact values and the EventBridge
//! comparison operators (`prefix`, `suffix`, `equals-ignore-case`,
//! `anything-but`, `numeric`, `exists`), compiled from JSON and tested
//! against the values the record holds at the leaf's path.

use std::borrow::Cow;

use super::decimal::Decimal;
use super::json::Json;
use super::{at_index, at_key, PatternError};

/// One value the record holds at a pattern's path.
#[derive(Debug, Clone)]
pub(super) enum Leaf<'a> {
    /// A JSON string: `S`, `B` (as base64), `eventName`, …
    Str(Cow<'a, str>),
    /// A DynamoDB number: a JSON string in the record whose text is a decimal.
    Num(&'a str),
    /// A JSON boolean: `BOOL`, and the `true` of `NULL`.
    Bool(bool),
}

impl Leaf<'_> {
    /// The text of a string value (a number's text included).
    fn text(&self) -> Option<&str> {
        match self {
            Leaf::Str(s) => Some(s),
            Leaf::Num(n) => Some(n),
            Leaf::Bool(_) => None,
        }
    }

    /// The value of a number.
    fn number(&self) -> Option<Decimal> {
        match self {
            Leaf::Num(n) => Decimal::parse(n),
            _ => None,
        }
    }
}

/// One alternative of a leaf's value list.
#[derive(Debug, Clone)]
pub(super) enum Matcher {
    Exact(Literal),
    Prefix(Affix),
    Suffix(Affix),
    /// The expected text, lower-cased.
    EqualsIgnoreCase(String),
    AnythingBut(Exclusion),
    Numeric(Range),
    Exists(bool),
}

/// An exact value of a pattern.
#[derive(Debug, Clone)]
pub(super) enum Literal {
    Str(String),
    Num(Decimal),
    Bool(bool),
    Null,
}

/// The text of a `prefix` or `suffix`, lower-cased when case is ignored.
#[derive(Debug, Clone)]
pub(super) struct Affix {
    text: String,
    ignore_case: bool,
}

/// What an `anything-but` refuses.
#[derive(Debug, Clone)]
pub(super) enum Exclusion {
    Values(Vec<Literal>),
    Prefix(String),
    Suffix(String),
    /// Lower-cased.
    EqualsIgnoreCase(Vec<String>),
}

/// A `numeric` range; `=` is a range with two equal inclusive bounds.
#[derive(Debug, Clone)]
pub(super) struct Range {
    lower: Option<Bound>,
    upper: Option<Bound>,
}

#[derive(Debug, Clone)]
struct Bound {
    value: Decimal,
    inclusive: bool,
}

impl Matcher {
    /// Whether the values found at the leaf's path (none when the path is
    /// absent) satisfy this alternative.
    pub(super) fn accepts(&self, values: &[Leaf<'_>]) -> bool {
        match self {
            Matcher::Exists(expected) => values.is_empty() != *expected,
            _ => values.iter().any(|value| self.accepts_value(value)),
        }
    }

    fn accepts_value(&self, value: &Leaf<'_>) -> bool {
        match self {
            Matcher::Exact(literal) => literal.equals(value),
            Matcher::Prefix(affix) => value.text().is_some_and(|t| affix.begins(t)),
            Matcher::Suffix(affix) => value.text().is_some_and(|t| affix.ends(t)),
            Matcher::EqualsIgnoreCase(lower) => {
                value.text().is_some_and(|t| t.to_lowercase() == *lower)
            }
            Matcher::AnythingBut(exclusion) => exclusion.accepts(value),
            Matcher::Numeric(range) => value.number().is_some_and(|n| range.contains(&n)),
            Matcher::Exists(expected) => *expected,
        }
    }
}

impl Literal {
    /// Exact equality as EventBridge has it: a string equals a string (a
    /// DynamoDB number's text included), a number equals a DynamoDB number
    /// of the same value, a boolean a boolean; `null` equals nothing a
    /// stream record holds.
    fn equals(&self, value: &Leaf<'_>) -> bool {
        match (self, value) {
            (Literal::Str(s), Leaf::Str(t)) => s == t,
            (Literal::Str(s), Leaf::Num(t)) => s == t,
            (Literal::Num(n), Leaf::Num(_)) => value.number().as_ref() == Some(n),
            (Literal::Bool(b), Leaf::Bool(c)) => b == c,
            _ => false,
        }
    }
}

impl Affix {
    fn begins(&self, text: &str) -> bool {
        match self.ignore_case {
            true => text.to_lowercase().starts_with(&self.text),
            false => text.starts_with(&self.text),
        }
    }

    fn ends(&self, text: &str) -> bool {
        match self.ignore_case {
            true => text.to_lowercase().ends_with(&self.text),
            false => text.ends_with(&self.text),
        }
    }
}

impl Exclusion {
    /// A value passes unless it is one that is refused; a prefix, suffix or
    /// case-insensitive refusal only refuses strings.
    fn accepts(&self, value: &Leaf<'_>) -> bool {
        match self {
            Exclusion::Values(refused) => !refused.iter().any(|r| r.equals(value)),
            Exclusion::Prefix(p) => value.text().is_none_or(|t| !t.starts_with(p.as_str())),
            Exclusion::Suffix(s) => value.text().is_none_or(|t| !t.ends_with(s.as_str())),
            Exclusion::EqualsIgnoreCase(refused) => value
                .text()
                .is_none_or(|t| !refused.contains(&t.to_lowercase())),
        }
    }
}

impl Range {
    fn contains(&self, n: &Decimal) -> bool {
        let above = self.lower.as_ref().is_none_or(|b| match b.inclusive {
            true => *n >= b.value,
            false => *n > b.value,
        });
        let below = self.upper.as_ref().is_none_or(|b| match b.inclusive {
            true => *n <= b.value,
            false => *n < b.value,
        });
        above && below
    }
}

/// Compiles one element of a leaf's value list found at `path`.
pub(super) fn compile_matcher(json: &Json, path: &str) -> Result<Matcher, PatternError> {
    match json {
        Json::Object(entries) => compile_operator(entries, path),
        Json::Array(_) => Err(PatternError::invalid(
            path,
            "a value list cannot hold an array",
        )),
        scalar => Ok(Matcher::Exact(literal(scalar, path)?)),
    }
}

fn literal(json: &Json, path: &str) -> Result<Literal, PatternError> {
    match json {
        Json::String(s) => Ok(Literal::Str(s.clone())),
        Json::Number(text) => Ok(Literal::Num(number(text, path)?)),
        Json::Bool(b) => Ok(Literal::Bool(*b)),
        Json::Null => Ok(Literal::Null),
        other => Err(PatternError::invalid(
            path,
            format!("expected a value, found {}", other.kind()),
        )),
    }
}

pub(super) fn number(text: &str, path: &str) -> Result<Decimal, PatternError> {
    Decimal::parse(text)
        .ok_or_else(|| PatternError::invalid(path, format!("{text} is not a number")))
}

/// An operator object, `{"prefix": "us-"}`: exactly one known key.
fn compile_operator(entries: &[(String, Json)], path: &str) -> Result<Matcher, PatternError> {
    let [(name, argument)] = entries else {
        return Err(PatternError::invalid(
            path,
            format!(
                "an operator object has exactly one key, such as {{\"prefix\": \"us-\"}}; \
                 this one has {}",
                entries.len()
            ),
        ));
    };
    let at = at_key(path, name);
    match name.as_str() {
        "prefix" => Ok(Matcher::Prefix(affix(argument, &at)?)),
        "suffix" => Ok(Matcher::Suffix(affix(argument, &at)?)),
        "equals-ignore-case" => Ok(Matcher::EqualsIgnoreCase(
            text(argument, &at)?.to_lowercase(),
        )),
        "anything-but" => Ok(Matcher::AnythingBut(exclusion(argument, &at)?)),
        "numeric" => Ok(Matcher::Numeric(super::numeric::range(argument, &at)?)),
        "exists" => match argument {
            Json::Bool(b) => Ok(Matcher::Exists(*b)),
            other => Err(PatternError::invalid(
                at,
                format!("exists takes true or false, not {}", other.kind()),
            )),
        },
        "wildcard" | "cidr" => Err(PatternError::invalid(
            path,
            format!("operator {name:?} is not supported"),
        )),
        _ => Err(PatternError::invalid(
            path,
            format!("unknown operator {name:?}"),
        )),
    }
}

fn text(json: &Json, path: &str) -> Result<String, PatternError> {
    match json {
        Json::String(s) => Ok(s.clone()),
        other => Err(PatternError::invalid(
            path,
            format!("expected a string, found {}", other.kind()),
        )),
    }
}

/// `"us-"` or `{"equals-ignore-case": "us-"}`.
fn affix(json: &Json, path: &str) -> Result<Affix, PatternError> {
    match json {
        Json::String(s) => Ok(Affix {
            text: s.clone(),
            ignore_case: false,
        }),
        Json::Object(entries) => match entries.as_slice() {
            [(key, value)] if key == "equals-ignore-case" => Ok(Affix {
                text: text(value, &at_key(path, key))?.to_lowercase(),
                ignore_case: true,
            }),
            _ => Err(PatternError::invalid(
                path,
                "expected a string or {\"equals-ignore-case\": \"…\"}",
            )),
        },
        other => Err(PatternError::invalid(
            path,
            format!("expected a string, found {}", other.kind()),
        )),
    }
}

/// `anything-but`'s argument: a string or number, a list of strings or of
/// numbers, or one of `{"prefix": …}`, `{"suffix": …}`,
/// `{"equals-ignore-case": string or strings}`.
fn exclusion(json: &Json, path: &str) -> Result<Exclusion, PatternError> {
    match json {
        Json::String(_) | Json::Number(_) => Ok(Exclusion::Values(vec![literal(json, path)?])),
        Json::Array(items) => excluded_values(items, path),
        Json::Object(entries) => match entries.as_slice() {
            [(key, value)] => {
                let at = at_key(path, key);
                match key.as_str() {
                    "prefix" => Ok(Exclusion::Prefix(text(value, &at)?)),
                    "suffix" => Ok(Exclusion::Suffix(text(value, &at)?)),
                    "equals-ignore-case" => Ok(Exclusion::EqualsIgnoreCase(strings(value, &at)?)),
                    _ => Err(PatternError::invalid(
                        path,
                        format!("unknown anything-but operator {key:?} (expected prefix, suffix or equals-ignore-case)"),
                    )),
                }
            }
            _ => Err(PatternError::invalid(
                path,
                "an anything-but object has exactly one key: prefix, suffix or equals-ignore-case",
            )),
        },
        other => Err(PatternError::invalid(
            path,
            format!("anything-but takes a string, a number, a list of them or an operator object, not {}", other.kind()),
        )),
    }
}

/// A non-empty list of strings only or of numbers only.
fn excluded_values(items: &[Json], path: &str) -> Result<Exclusion, PatternError> {
    if items.is_empty() {
        return Err(PatternError::invalid(path, "empty list"));
    }
    let strings = matches!(items[0], Json::String(_));
    let values = items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Json::String(_) | Json::Number(_) if matches!(item, Json::String(_)) == strings => {
                literal(item, &at_index(path, i))
            }
            _ => Err(PatternError::invalid(
                at_index(path, i),
                format!(
                    "expected only strings or only numbers, found {}",
                    item.kind()
                ),
            )),
        })
        .collect::<Result<_, _>>()?;
    Ok(Exclusion::Values(values))
}

/// A string or a non-empty list of strings, lower-cased.
fn strings(json: &Json, path: &str) -> Result<Vec<String>, PatternError> {
    match json {
        Json::Array(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, item)| Ok(text(item, &at_index(path, i))?.to_lowercase()))
            .collect(),
        Json::Array(_) => Err(PatternError::invalid(path, "empty list")),
        other => Ok(vec![text(other, path)?.to_lowercase()]),
    }
}

impl Range {
    /// A range from its bounds, `None` for an unbounded side.
    pub(super) fn new(lower: Option<(Decimal, bool)>, upper: Option<(Decimal, bool)>) -> Self {
        let bound = |(value, inclusive)| Bound { value, inclusive };
        Self {
            lower: lower.map(bound),
            upper: upper.map(bound),
        }
    }
}
