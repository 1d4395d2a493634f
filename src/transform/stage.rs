//! One stage of the transform pipeline: filter patterns (ORed, as AWS
//! Lambda does), then transforms in order. A table has one; so may a sink.

use super::pattern::{FilterPattern, Filters, PatternError};
use super::ApplyError;
use super::{FilterSpec, Outcome, TransformConfig, TransformError, Transforms};
use crate::model::ChangeEvent;

/// What a stage did with one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It goes on (possibly changed).
    Keep,
    /// No filter pattern matched it.
    Filtered,
    /// A `filter` transform dropped it.
    Skipped,
}

/// Why a stage does not compile; displays with the place in the stage's
/// settings (`filters[1]: dynamodb.Keys: …`, `transforms[0].template: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    /// A filter pattern is wrong.
    #[error(transparent)]
    Filter(#[from] PatternError),
    /// A transform is wrong.
    #[error(transparent)]
    Transform(#[from] TransformError),
}

impl StageError {
    /// Where in the stage's settings: `filters[1]` or `transforms[0].template`.
    pub fn field(&self) -> String {
        match self {
            Self::Filter(err) => format!("filters[{}]", err.filter.unwrap_or(0)),
            Self::Transform(err) => format!("transforms[{}].{}", err.index, err.field),
        }
    }

    /// What is wrong, preceded by the place inside a pattern, if any.
    pub fn problem(&self) -> String {
        match self {
            Self::Filter(err) if err.path.is_empty() => err.message.clone(),
            Self::Filter(err) => format!("{}: {}", err.path, err.message),
            Self::Transform(err) => err.message.clone(),
        }
    }
}

/// Compiled filters and transforms.
#[derive(Debug, Clone, Default)]
pub struct Stage {
    filters: Filters,
    transforms: Transforms,
}

impl Stage {
    /// Compiles the settings of one table, sink or loader.
    pub fn compile(
        filters: &[FilterSpec],
        transforms: &[TransformConfig],
    ) -> Result<Self, StageError> {
        let patterns = filters
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                compile_pattern(spec).map_err(|err| PatternError {
                    filter: Some(index),
                    ..err
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            filters: Filters::new(patterns),
            transforms: Transforms::compile(transforms)?,
        })
    }

    /// True when the stage passes every change through unchanged.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty() && self.transforms.is_empty()
    }

    /// The filter patterns.
    pub fn filters(&self) -> &Filters {
        &self.filters
    }

    /// Filters, then transforms, `event`. An error (a transform that does
    /// not fit the change) is meant for the dead-letter file.
    pub fn apply(&self, event: &mut ChangeEvent) -> Result<Verdict, ApplyError> {
        if !self.filters.matches(event) {
            return Ok(Verdict::Filtered);
        }
        match self.transforms.apply(event)? {
            Outcome::Keep => Ok(Verdict::Keep),
            Outcome::Skip => Ok(Verdict::Skipped),
        }
    }
}

fn compile_pattern(spec: &FilterSpec) -> Result<FilterPattern, PatternError> {
    match spec {
        FilterSpec::Text(text) => FilterPattern::parse(text),
        FilterSpec::Table(value) => FilterPattern::from_value(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(toml_text: &str) -> (Vec<FilterSpec>, Vec<TransformConfig>) {
        #[derive(serde::Deserialize)]
        struct Both {
            #[serde(default)]
            filters: Vec<FilterSpec>,
            #[serde(default)]
            transforms: Vec<TransformConfig>,
        }
        let both: Both = toml::from_str(toml_text).unwrap();
        (both.filters, both.transforms)
    }

    #[test]
    fn text_and_table_patterns_compile_alike() {
        let (filters, transforms) =
            specs(r#"filters = ['{"eventName": ["INSERT"]}', { eventName = ["REMOVE"] }]"#);
        let stage = Stage::compile(&filters, &transforms).unwrap();
        assert_eq!(stage.filters().patterns().len(), 2);
        assert!(!stage.is_empty());
        assert!(Stage::compile(&[], &[]).unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_place_in_the_stage() {
        let (filters, transforms) =
            specs(r#"filters = ['{"eventName": ["INSERT"]}', { dynamodb = { Keyz = {} } }]"#);
        let err = Stage::compile(&filters, &transforms).unwrap_err();
        assert!(err.to_string().starts_with("filters[1]: dynamodb"), "{err}");
        let (filters, transforms) = specs(
            r#"transforms = [{ type = "drop_old_image" }, { type = "set", attribute = "a", template = "{x" }]"#,
        );
        let err = Stage::compile(&filters, &transforms).unwrap_err();
        assert!(
            err.to_string().starts_with("transforms[1].template: "),
            "{err}"
        );
    }
}
