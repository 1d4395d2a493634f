//! Filter patterns with the syntax of AWS Lambda event filtering (that is,
//! of Amazon EventBridge event patterns), matched against a change as the
//! DynamoDB stream record AWS Lambda would see:
//!
//! ```json
//! {"eventName": "INSERT" | "MODIFY" | "REMOVE", "eventID": "…", "eventSource": "aws:dynamodb",
//!  "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
//!  "dynamodb": {"Keys": {…}, "NewImage": {…}, "OldImage": {…}}}
//! ```
//!
//! Attribute values are in DynamoDB JSON (`{"status": {"S": "paid"}}`,
//! numbers as `{"N": "100"}`, `NULL` as `{"NULL": true}`, binary as base64),
//! so a pattern names the type tag: `{"dynamodb": {"NewImage": {"status":
//! {"S": ["paid"]}}}}`. `userIdentity` is there on TTL deletes only. A
//! snapshot row (`Op::Read`) is the item as it is, and is matched as an
//! `INSERT`. Pure: no I/O.
//!
//! # Syntax
//!
//! A pattern is a JSON object. Each key must match (AND); its value is
//! either a nested object or a list of alternatives (OR), each an exact
//! value (string, number, `true`/`false`, `null`) or one operator object:
//! `{"prefix": "us-"}`, `{"suffix": ".png"}` (both also
//! `{"equals-ignore-case": "…"}` inside), `{"equals-ignore-case": "x"}`,
//! `{"anything-but": "x" | 3 | ["x", "y"] | [1, 2] | {"prefix": "x"} |
//! {"suffix": "x"} | {"equals-ignore-case": "x" | ["x", "y"]}}`,
//! `{"numeric": [">", 0, "<=", 5]}` (one of `=`, `<`, `<=`, `>`, `>=`, or a
//! lower bound then an upper bound), `{"exists": true | false}`. A
//! `"$or": [{…}, {…}]` key, at any object level, adds alternatives for that
//! object. An object that repeats a key (AWS documents
//! `{"dynamodb": {"NewImage": …}, "dynamodb": {"OldImage": …}}`) ANDs both.
//!
//! # Matching
//!
//! - A nested object on a place the record lacks (no `OldImage` on an
//!   `INSERT`, an attribute that is absent or of another type) fails, unless
//!   everything it asks is `exists: false`.
//! - `exists` tests for a value at exactly that path, as AWS documents: an
//!   attribute is an object keyed by its type, so `{"tags": [{"exists":
//!   true}]}` never matches and `{"tags": {"SS": [{"exists": true}]}}` does;
//!   `exists: false` on an object place always holds.
//! - Arrays (`L`, `SS`, `NS`, `BS`) match when any element does; an object
//!   pattern below an `L` must match within one element.
//! - Strings match character by character. A DynamoDB number is a string in
//!   the record, so a string alternative matches its text (`{"N": ["101"]}`
//!   matches `"101"`, not `"101.0"`), while a number alternative matches it
//!   by value (`{"N": [100]}` matches `"100"`, `"100.0"` and `"1E2"`), as
//!   EventBridge compares numbers.
//! - `numeric` applies to DynamoDB numbers (AWS Lambda documents numeric
//!   operators as unsupported for DynamoDB, because numbers are strings in
//!   the record; here they are supported). Comparisons are exact on the
//!   decimal values, all 38 digits of them, never through a float.
//! - `anything-but` needs a value: an absent field does not match it.
//! - An image that fails to decode matches nothing below it.
//!
//! Field names the record never holds (a top-level `awsRegion`, a misspelt
//! `NewImge`, a type tag `s`) are rejected when parsing rather than left to
//! match nothing; so are empty lists and objects. `$or` is always the
//! operator, never an attribute name.

mod compile;
mod decimal;
mod json;
mod numeric;
mod operators;
mod record;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_operators;

use std::str::FromStr;

use crate::model::ChangeEvent;

/// One compiled filter pattern.
#[derive(Debug, Clone)]
pub struct FilterPattern {
    root: compile::Object,
}

impl FilterPattern {
    /// Compiles pattern JSON text. Numbers keep every digit and repeated
    /// keys are ANDed (see the module documentation for the syntax); errors
    /// name the place in the pattern.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let json = json::Json::parse(text)
            .map_err(|err| PatternError::invalid("", format!("not valid JSON: {err}")))?;
        Self::compile(&json)
    }

    /// Compiles a pattern already parsed by `serde_json`. Its numbers are as
    /// exact as `serde_json` kept them (a float beyond 2^64) and it cannot
    /// repeat keys; prefer [`FilterPattern::parse`] for text.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, PatternError> {
        Self::compile(&json::Json::from_value(value))
    }

    fn compile(json: &json::Json) -> Result<Self, PatternError> {
        Ok(Self {
            root: compile::compile_root(json)?,
        })
    }

    /// Whether the event's stream record matches. Never panics; an image
    /// that does not decode matches nothing below it.
    pub fn matches(&self, event: &ChangeEvent) -> bool {
        record::matches(&self.root, event)
    }

    /// True when no record without `image` can match: the pattern needs a
    /// stream whose view type carries that image.
    pub fn needs_image(&self, image: ImagePart) -> bool {
        !record::can_match_without(&self.root, image.field())
    }
}

/// One of a stream record's images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImagePart {
    /// `dynamodb.NewImage`.
    New,
    /// `dynamodb.OldImage`.
    Old,
}

impl ImagePart {
    /// The record field: `NewImage` or `OldImage`.
    pub fn field(self) -> &'static str {
        match self {
            Self::New => "NewImage",
            Self::Old => "OldImage",
        }
    }
}

impl FromStr for FilterPattern {
    type Err = PatternError;

    /// Same as [`FilterPattern::parse`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Several patterns, ORed as AWS Lambda does: an event passes when any
/// pattern matches it, and every event passes when there is none.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    patterns: Vec<FilterPattern>,
}

impl Filters {
    /// Compiles each pattern text; the first error says which pattern
    /// ([`PatternError::filter`]) and where in it.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let patterns = patterns
            .iter()
            .enumerate()
            .map(|(i, text)| {
                FilterPattern::parse(text.as_ref()).map_err(|err| PatternError {
                    filter: Some(i),
                    ..err
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// Filters made of compiled patterns.
    pub fn new(patterns: Vec<FilterPattern>) -> Self {
        Self { patterns }
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[FilterPattern] {
        &self.patterns
    }

    /// True when there are no patterns (everything passes).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the event passes: no patterns, or one that matches.
    pub fn matches(&self, event: &ChangeEvent) -> bool {
        self.patterns.is_empty() || self.first_match(event).is_some()
    }

    /// True when there are patterns and each needs `image` (see
    /// [`FilterPattern::needs_image`]): a stream without it would have every
    /// change filtered out.
    pub fn all_need_image(&self, image: ImagePart) -> bool {
        !self.patterns.is_empty() && self.patterns.iter().all(|p| p.needs_image(image))
    }

    /// The index of the first pattern that matches the event; `None` when
    /// none does, including when there are no patterns (though
    /// [`Filters::matches`] then passes the event).
    pub fn first_match(&self, event: &ChangeEvent) -> Option<usize> {
        self.patterns.iter().position(|p| p.matches(event))
    }
}

/// Why a pattern does not compile, and where.
///
/// Displays as `dynamodb.NewImage.status.S[0]: unknown operator "prefx"`,
/// prefixed with `filters[1]: ` when it came from [`Filters::parse`], so
/// that configuration checks can put their own place in front
/// (`tables[0].filters[1]: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct PatternError {
    /// Which pattern of a [`Filters`] list (from 0), when [`Filters::parse`]
    /// compiled it.
    pub filter: Option<usize>,
    /// Where in the pattern: keys joined by `.`, list positions as `[i]`
    /// (`dynamodb.NewImage.status.S[0]`); empty for the pattern as a whole.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl PatternError {
    fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            filter: None,
            path: path.into(),
            message: message.into(),
        }
    }

    fn describe(&self) -> String {
        let filter = self.filter.map(|i| format!("filters[{i}]: "));
        let path = (!self.path.is_empty()).then(|| format!("{}: ", self.path));
        format!(
            "{}{}{}",
            filter.unwrap_or_default(),
            path.unwrap_or_default(),
            self.message
        )
    }
}

/// `path.key` (or `key` at the top).
fn at_key(path: &str, key: &str) -> String {
    match path.is_empty() {
        true => key.to_owned(),
        false => format!("{path}.{key}"),
    }
}

/// `path[i]`.
fn at_index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}
