//! The `numeric` operator's argument: one comparison (`["=", 3]`,
//! `["<", 5]`) or a lower bound followed by an upper bound
//! (`[">", 0, "<=", 5]`), as EventBridge reads it.

use super::decimal::Decimal;
use super::json::Json;
use super::operators::{number, Range};
use super::{at_index, PatternError};

const USAGE: &str =
    "numeric takes [operator, number] or [lower operator, number, upper operator, number], \
                     such as [\">\", 0, \"<=\", 5]; operators are =, <, <=, >, >=";

/// One `operator, number` pair.
struct Comparison<'a> {
    operator: &'a str,
    text: &'a str,
    value: Decimal,
}

impl Comparison<'_> {
    fn inclusive(&self) -> bool {
        matches!(self.operator, "=" | "<=" | ">=")
    }

    fn is_lower(&self) -> bool {
        matches!(self.operator, ">" | ">=")
    }

    fn is_upper(&self) -> bool {
        matches!(self.operator, "<" | "<=")
    }

    fn bound(&self) -> Option<(Decimal, bool)> {
        Some((self.value.clone(), self.inclusive()))
    }
}

/// Compiles `numeric`'s argument found at `path`.
pub(super) fn range(json: &Json, path: &str) -> Result<Range, PatternError> {
    let items = match json {
        Json::Array(items) if items.len() == 2 || items.len() == 4 => items,
        _ => return Err(PatternError::invalid(path, USAGE)),
    };
    let first = comparison(items, 0, path)?;
    if items.len() == 2 {
        return Ok(match first.operator {
            "=" => Range::new(first.bound(), first.bound()),
            _ if first.is_lower() => Range::new(first.bound(), None),
            _ => Range::new(None, first.bound()),
        });
    }
    let second = comparison(items, 2, path)?;
    if !first.is_lower() || !second.is_upper() {
        return Err(PatternError::invalid(
            path,
            "a range is a lower bound (> or >=) followed by an upper bound (< or <=)",
        ));
    }
    let empty = match first.value.cmp(&second.value) {
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => !(first.inclusive() && second.inclusive()),
        std::cmp::Ordering::Greater => true,
    };
    if empty {
        return Err(PatternError::invalid(
            path,
            format!(
                "the range is empty: no number is {} {} and {} {}",
                first.operator, first.text, second.operator, second.text
            ),
        ));
    }
    Ok(Range::new(first.bound(), second.bound()))
}

/// The pair at `items[i]`, `items[i + 1]`.
fn comparison<'a>(items: &'a [Json], i: usize, path: &str) -> Result<Comparison<'a>, PatternError> {
    let operator = match &items[i] {
        Json::String(op) if matches!(op.as_str(), "=" | "<" | "<=" | ">" | ">=") => op.as_str(),
        Json::String(op) => {
            return Err(PatternError::invalid(
                at_index(path, i),
                format!("unknown numeric operator {op:?} (expected =, <, <=, >, >=)"),
            ))
        }
        other => {
            return Err(PatternError::invalid(
                at_index(path, i),
                format!("expected an operator such as \">\", found {}", other.kind()),
            ))
        }
    };
    let at = at_index(path, i + 1);
    let text = match &items[i + 1] {
        Json::Number(text) => text.as_str(),
        other => {
            return Err(PatternError::invalid(
                at,
                format!("expected a number, found {}", other.kind()),
            ))
        }
    };
    Ok(Comparison {
        operator,
        text,
        value: number(text, &at)?,
    })
}
