//! Pattern JSON to a compiled pattern, checked against the shape of the
//! stream record it will be matched with: field names the record can never
//! hold (a misspelt `NewImage`, a type tag `s`) are errors, not patterns
//! that silently match nothing.

use super::json::Json;
use super::operators::{compile_matcher, Matcher};
use super::{at_index, at_key, PatternError};

/// A pattern object: every field must match, and one alternative of each
/// `$or`.
#[derive(Debug, Clone)]
pub(super) struct Object {
    pub(super) fields: Vec<(String, Field)>,
    pub(super) any_of: Vec<Vec<Object>>,
}

/// What a pattern object asks of one of its fields.
#[derive(Debug, Clone)]
pub(super) enum Field {
    /// A nested object.
    Object(Object),
    /// A leaf: a list of alternatives, at least one of which must accept.
    Values(Vec<Matcher>),
}

/// Where in the record a pattern object sits, which says what its keys
/// may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// The record: `eventName`, `dynamodb`, …
    Record,
    /// `dynamodb`: `Keys`, `NewImage`, `OldImage`.
    Stream,
    /// `userIdentity`: `type`, `principalId`.
    Identity,
    /// An item (keys, an image, an `M`): attribute names.
    Item,
    /// An attribute value: its type tag.
    Attribute,
    /// A value: no fields.
    Value,
}

impl Level {
    /// The level of `key` below this one, or why the record cannot hold it.
    fn child(self, key: &str) -> Result<Level, String> {
        match (self, key) {
            (Level::Record, "eventName" | "eventID" | "eventSource") => Ok(Level::Value),
            (Level::Record, "dynamodb") => Ok(Level::Stream),
            (Level::Record, "userIdentity") => Ok(Level::Identity),
            (Level::Record, _) => Err(format!(
                "unknown record field {key:?} (expected eventName, eventID, eventSource, \
                 userIdentity or dynamodb)"
            )),
            (Level::Stream, "Keys" | "NewImage" | "OldImage") => Ok(Level::Item),
            (Level::Stream, _) => Err(format!(
                "unknown field {key:?} of dynamodb (expected Keys, NewImage or OldImage)"
            )),
            (Level::Identity, "type" | "principalId") => Ok(Level::Value),
            (Level::Identity, _) => Err(format!(
                "unknown field {key:?} of userIdentity (expected type or principalId)"
            )),
            (Level::Item, _) => Ok(Level::Attribute),
            (Level::Attribute, "M") => Ok(Level::Item),
            // A list's elements are attribute values themselves.
            (Level::Attribute, "L") => Ok(Level::Attribute),
            (Level::Attribute, "S" | "N" | "B" | "BOOL" | "NULL" | "SS" | "NS" | "BS") => {
                Ok(Level::Value)
            }
            (Level::Attribute, _) => Err(format!(
                "unknown DynamoDB type {key:?} (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS)"
            )),
            (Level::Value, _) => Err("a value has no fields".to_owned()),
        }
    }
}

/// Compiles a whole pattern.
pub(super) fn compile_root(json: &Json) -> Result<Object, PatternError> {
    match json {
        Json::Object(entries) => compile_object(entries, Level::Record, ""),
        other => Err(PatternError::invalid(
            "",
            format!("a pattern is a JSON object, not {}", other.kind()),
        )),
    }
}

fn compile_object(
    entries: &[(String, Json)],
    level: Level,
    path: &str,
) -> Result<Object, PatternError> {
    if entries.is_empty() {
        return Err(PatternError::invalid(
            path,
            "empty object: a pattern object names at least one field",
        ));
    }
    let mut object = Object {
        fields: Vec::new(),
        any_of: Vec::new(),
    };
    for (key, value) in entries {
        let at = at_key(path, key);
        if key == "$or" {
            object.any_of.push(compile_or(value, level, &at)?);
            continue;
        }
        let child = level
            .child(key)
            .map_err(|message| PatternError::invalid(&at, message))?;
        object
            .fields
            .push((key.clone(), compile_field(value, child, &at)?));
    }
    Ok(object)
}

fn compile_field(json: &Json, level: Level, path: &str) -> Result<Field, PatternError> {
    match json {
        Json::Array(items) => compile_values(items, path).map(Field::Values),
        Json::Object(_) if level == Level::Value => Err(PatternError::invalid(
            path,
            "this field holds a value: match it with a list such as [\"x\"], not an object",
        )),
        Json::Object(entries) => compile_object(entries, level, path).map(Field::Object),
        other => Err(PatternError::invalid(
            path,
            format!(
                "expected a list of values (such as [\"x\"]) or an object, found {}",
                other.kind()
            ),
        )),
    }
}

fn compile_values(items: &[Json], path: &str) -> Result<Vec<Matcher>, PatternError> {
    if items.is_empty() {
        return Err(PatternError::invalid(
            path,
            "empty list: it would match nothing",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| compile_matcher(item, &at_index(path, i)))
        .collect()
}

/// `"$or": [{…}, {…}]`: alternatives for the object that holds it.
fn compile_or(json: &Json, level: Level, path: &str) -> Result<Vec<Object>, PatternError> {
    let items = match json {
        Json::Array(items) if !items.is_empty() => items,
        Json::Array(_) => {
            return Err(PatternError::invalid(
                path,
                "$or needs at least one pattern object",
            ))
        }
        other => {
            return Err(PatternError::invalid(
                path,
                format!("$or takes a list of pattern objects, not {}", other.kind()),
            ))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Json::Object(entries) => compile_object(entries, level, &at_index(path, i)),
            other => Err(PatternError::invalid(
                at_index(path, i),
                format!(
                    "a $or alternative is a pattern object, not {}",
                    other.kind()
                ),
            )),
        })
        .collect()
}
