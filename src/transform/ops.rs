//! Rename, drop, include, cast, computed attributes, old-image removal and
//! the legacy `filter` over the images of a change event, compiled once
//! from their settings. Key attributes stay in every image: sinks key their
//! rows on them.

use std::collections::HashSet;

use super::apply_error::{ApplyError, CastError};
use super::template::Template;
use super::{CastTarget, TransformConfig};
use crate::model::{AttributeValue, ChangeEvent, Item, Number, Op};

/// Whether an event goes on after the transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Keep it.
    Keep,
    /// A filter dropped it (on purpose: not an error).
    Skip,
}

/// A transform list that does not compile: which entry and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transforms[{index}].{field}: {message}")]
pub struct TransformError {
    /// Position of the entry in its list (from 0).
    pub index: usize,
    /// The entry's field at fault.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// A compiled transform list, applied in order.
#[derive(Debug, Clone, Default)]
pub struct Transforms {
    steps: Vec<Step>,
}

#[derive(Debug, Clone)]
enum Step {
    Config(TransformConfig),
    Include(HashSet<String>),
    Set {
        attribute: String,
        template: Template,
    },
}

impl Transforms {
    /// Compiles `configs` (templates are parsed here, once).
    pub fn compile(configs: &[TransformConfig]) -> Result<Self, TransformError> {
        let mut steps: Vec<Step> = configs
            .iter()
            .enumerate()
            .map(|(index, config)| compile_step(index, config))
            .collect::<Result<_, _>>()?;
        hoist_old_image_drop(&mut steps);
        Ok(Self { steps })
    }

    /// True when there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Applies every step in order. An error (a cast that does not fit, an
    /// image that does not decode) is meant for the dead-letter file.
    pub fn apply(&self, event: &mut ChangeEvent) -> Result<Outcome, ApplyError> {
        for step in &self.steps {
            let outcome = match step {
                Step::Config(config) => apply_config(config, event)?,
                Step::Include(names) => {
                    let keys = event.keys.clone();
                    for image in images(event)? {
                        image.retain(|name, _| names.contains(name) || keys.contains_key(name));
                    }
                    Outcome::Keep
                }
                Step::Set {
                    attribute,
                    template,
                } => {
                    for image in images(event)? {
                        if let Some(text) = template.render(image) {
                            image.insert(attribute.clone(), AttributeValue::S(text));
                        }
                    }
                    Outcome::Keep
                }
            };
            if outcome == Outcome::Skip {
                return Ok(Outcome::Skip);
            }
        }
        Ok(Outcome::Keep)
    }
}

/// Moves `drop_old_image` ahead of the steps that only edit images, so
/// they do not decode an old image that is dropped anyway. Only a legacy
/// `filter` reads the old image (of a remove), so it is not passed.
fn hoist_old_image_drop(steps: &mut Vec<Step>) {
    let is_drop = |step: &Step| matches!(step, Step::Config(TransformConfig::DropOldImage));
    let Some(at) = steps.iter().position(is_drop) else {
        return;
    };
    let is_filter = |step: &Step| matches!(step, Step::Config(TransformConfig::Filter { .. }));
    let to = steps[..at].iter().rposition(is_filter).map_or(0, |f| f + 1);
    let step = steps.remove(at);
    steps.insert(to, step);
}

fn compile_step(index: usize, config: &TransformConfig) -> Result<Step, TransformError> {
    let fail = |field, message: String| TransformError {
        index,
        field,
        message,
    };
    match config {
        TransformConfig::Include { attributes } => {
            if attributes.is_empty() {
                return Err(fail(
                    "attributes",
                    "name at least one attribute to keep".into(),
                ));
            }
            Ok(Step::Include(attributes.iter().cloned().collect()))
        }
        TransformConfig::Set {
            attribute,
            template,
        } => {
            if attribute.is_empty() {
                return Err(fail("attribute", "must not be empty".into()));
            }
            let template = Template::parse(template).map_err(|m| fail("template", m))?;
            Ok(Step::Set {
                attribute: attribute.clone(),
                template,
            })
        }
        TransformConfig::Rename { from, to } if from.is_empty() || to.is_empty() => Err(fail(
            if from.is_empty() { "from" } else { "to" },
            "must not be empty".into(),
        )),
        other => Ok(Step::Config(other.clone())),
    }
}

/// Applies a transform compiled as its settings.
fn apply_config(config: &TransformConfig, event: &mut ChangeEvent) -> Result<Outcome, ApplyError> {
    match config {
        TransformConfig::Rename { from, to } => {
            for image in images(event)? {
                if let Some(value) = image.remove(from) {
                    image.insert(to.clone(), value);
                }
            }
        }
        TransformConfig::Drop { attributes } => {
            let keys = event.keys.clone();
            for image in images(event)? {
                for name in attributes.iter().filter(|name| !keys.contains_key(*name)) {
                    image.remove(name);
                }
            }
        }
        TransformConfig::Cast { attribute, to } => {
            for image in images(event)? {
                if let Some(value) = image.get_mut(attribute) {
                    *value = cast(value, *to).map_err(|problem| ApplyError::Cast {
                        attribute: attribute.clone(),
                        problem,
                    })?;
                }
            }
        }
        TransformConfig::DropOldImage => event.old_image = None,
        TransformConfig::Filter {
            ops,
            tables,
            field,
            equals,
            exclude,
        } => {
            let matches = (ops.is_empty() || ops.contains(&event.op))
                && (tables.is_empty() || tables.iter().any(|t| **t == *event.table))
                && match (field, equals) {
                    (Some(field), Some(expected)) => {
                        field_text(event, field).as_deref() == Some(expected.as_str())
                    }
                    (Some(field), None) => field_text(event, field).is_some(),
                    _ => true,
                };
            if matches == *exclude {
                return Ok(Outcome::Skip);
            }
        }
        // Compiled into their own steps.
        TransformConfig::Include { .. } | TransformConfig::Set { .. } => {}
    }
    Ok(Outcome::Keep)
}

/// The event's images as attributes, decoded for editing.
fn images(event: &mut ChangeEvent) -> Result<Vec<&mut Item>, ApplyError> {
    event
        .new_image
        .iter_mut()
        .chain(event.old_image.iter_mut())
        .map(|image| Ok(image.item_mut()?))
        .collect()
}

/// The text of a scalar attribute of the new image (the old one for removes).
fn field_text(event: &ChangeEvent, field: &str) -> Option<String> {
    let image = if event.op == Op::Remove {
        event.old_image.as_ref()
    } else {
        event.new_image.as_ref()
    };
    match image?.item().ok()?.get(field)? {
        AttributeValue::S(s) => Some(s.clone()),
        AttributeValue::N(n) => Some(n.as_str().to_owned()),
        AttributeValue::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn cast(value: &AttributeValue, to: CastTarget) -> Result<AttributeValue, CastError> {
    match (to, value) {
        (_, AttributeValue::Null) => Ok(AttributeValue::Null),
        (CastTarget::Number, AttributeValue::N(_)) => Ok(value.clone()),
        (CastTarget::Number, AttributeValue::S(s)) => {
            Ok(AttributeValue::N(Number::parse(s.trim())?))
        }
        (CastTarget::TimestampMs | CastTarget::TimestampS, AttributeValue::S(s)) => {
            let time =
                humantime::parse_rfc3339_weak(s.trim()).map_err(|source| CastError::Time {
                    text: s.clone(),
                    source,
                })?;
            let since = time
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| CastError::BeforeEpoch(s.clone()))?;
            let number = if to == CastTarget::TimestampMs {
                since.as_millis().to_string()
            } else {
                since.as_secs().to_string()
            };
            Ok(AttributeValue::N(Number::parse(&number)?))
        }
        (CastTarget::TimestampMs | CastTarget::TimestampS, AttributeValue::N(_)) => {
            Ok(value.clone())
        }
        (_, other) => Err(CastError::Type {
            tag: other.type_tag(),
            to,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{Position, SequenceNumber};

    fn event(op: Op, image: Item) -> ChangeEvent {
        ChangeEvent {
            table: Arc::from("orders"),
            op,
            keys: Item::new(),
            new_image: (op != Op::Remove).then(|| image.clone().into()),
            old_image: (op == Op::Remove).then_some(image.into()),
            position: Position {
                shard: Arc::from("s"),
                sequence: SequenceNumber::parse("1").unwrap(),
            },
            version: SequenceNumber::parse("1").unwrap(),
            approx_time_ms: None,
            ttl_delete: false,
            event_id: String::new(),
            size_bytes: 0,
        }
    }

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.into())
    }

    #[test]
    fn rename_drop_and_cast() {
        let transforms: Vec<TransformConfig> = toml::from_str::<toml::Table>(
            r#"t = [
                { type = "rename", from = "amt", to = "amount" },
                { type = "drop", attributes = ["secret"] },
                { type = "cast", attribute = "amount", to = "number" },
                { type = "cast", attribute = "at", to = "timestamp_ms" },
            ]"#,
        )
        .unwrap()["t"]
            .clone()
            .try_into()
            .unwrap();
        let mut e = event(
            Op::Insert,
            Item::from([
                ("amt".into(), s(" 12.50 ")),
                ("secret".into(), s("x")),
                ("at".into(), s("2023-11-14T22:13:20Z")),
            ]),
        );
        assert_eq!(
            Transforms::compile(&transforms).unwrap().apply(&mut e),
            Ok(Outcome::Keep)
        );
        let image = e.new_image.unwrap();
        let image = image.item().unwrap();
        assert_eq!(
            image["amount"],
            AttributeValue::N(Number::parse("12.50").unwrap())
        );
        assert_eq!(
            image["at"],
            AttributeValue::N(Number::parse("1700000000000").unwrap())
        );
        assert!(!image.contains_key("secret") && !image.contains_key("amt"));
        let mut bad = event(Op::Insert, Item::from([("amt".into(), s("twelve"))]));
        assert!(Transforms::compile(&transforms)
            .unwrap()
            .apply(&mut bad)
            .unwrap_err()
            .to_string()
            .contains("\"amount\""));
    }

    #[test]
    fn filters_by_op_table_and_field() {
        let keep_paid = [TransformConfig::Filter {
            ops: vec![Op::Insert, Op::Modify],
            tables: vec!["orders".into()],
            field: Some("status".into()),
            equals: Some("paid".into()),
            exclude: false,
        }];
        let mut paid = event(Op::Modify, Item::from([("status".into(), s("paid"))]));
        let mut new = event(Op::Modify, Item::from([("status".into(), s("new"))]));
        let mut removed = event(Op::Remove, Item::from([("status".into(), s("paid"))]));
        assert_eq!(
            Transforms::compile(&keep_paid).unwrap().apply(&mut paid),
            Ok(Outcome::Keep)
        );
        assert_eq!(
            Transforms::compile(&keep_paid).unwrap().apply(&mut new),
            Ok(Outcome::Skip)
        );
        assert_eq!(
            Transforms::compile(&keep_paid).unwrap().apply(&mut removed),
            Ok(Outcome::Skip)
        );
        let drop_removes = [TransformConfig::Filter {
            ops: vec![Op::Remove],
            tables: vec![],
            field: None,
            equals: None,
            exclude: true,
        }];
        assert_eq!(
            Transforms::compile(&drop_removes)
                .unwrap()
                .apply(&mut removed),
            Ok(Outcome::Skip)
        );
        assert_eq!(
            Transforms::compile(&drop_removes).unwrap().apply(&mut paid),
            Ok(Outcome::Keep)
        );
    }

    #[test]
    fn include_set_and_drop_old_image_keep_the_keys() {
        let transforms: Vec<TransformConfig> = toml::from_str::<toml::Table>(
            r#"t = [
                { type = "set", attribute = "label", template = "{id}/{status}" },
                { type = "include", attributes = ["label", "status"] },
                { type = "exclude", attributes = ["status", "id"] },
                { type = "drop_old_image" },
            ]"#,
        )
        .unwrap()["t"]
            .clone()
            .try_into()
            .unwrap();
        let image = Item::from([
            ("id".into(), s("o-1")),
            ("status".into(), s("paid")),
            ("secret".into(), s("x")),
        ]);
        let mut e = event(Op::Modify, image.clone());
        e.keys = Item::from([("id".into(), s("o-1"))]);
        e.old_image = Some(image.into());
        let compiled = Transforms::compile(&transforms).unwrap();
        assert_eq!(compiled.apply(&mut e), Ok(Outcome::Keep));
        assert!(e.old_image.is_none());
        let new_image = e.new_image.unwrap();
        let kept: Vec<&String> = new_image.item().unwrap().keys().collect();
        assert_eq!(kept, ["id", "label"]);
        assert_eq!(new_image.item().unwrap()["label"], s("o-1/paid"));
    }

    #[test]
    fn compile_errors_name_the_entry_and_field() {
        let bad = [
            TransformConfig::DropOldImage,
            TransformConfig::Set {
                attribute: "x".into(),
                template: "{open".into(),
            },
        ];
        let err = Transforms::compile(&bad).unwrap_err();
        assert_eq!((err.index, err.field), (1, "template"));
        let empty = [TransformConfig::Include { attributes: vec![] }];
        assert!(Transforms::compile(&empty)
            .unwrap_err()
            .to_string()
            .starts_with("transforms[0].attributes: "));
    }

    #[test]
    fn an_old_image_dropped_later_is_dropped_first_but_not_before_a_filter() {
        let steps = [
            TransformConfig::Filter {
                ops: vec![Op::Remove],
                tables: vec![],
                field: Some("status".into()),
                equals: Some("paid".into()),
                exclude: true,
            },
            TransformConfig::Rename {
                from: "status".into(),
                to: "state".into(),
            },
            TransformConfig::DropOldImage,
        ];
        let compiled = Transforms::compile(&steps).unwrap();
        let kinds: Vec<&str> = compiled
            .steps
            .iter()
            .map(|step| match step {
                Step::Config(config) => config.kind(),
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["filter", "drop_old_image", "rename"]);
        // The filter still sees the old image of a remove.
        let mut paid_removed = event(Op::Remove, Item::from([("status".into(), s("paid"))]));
        assert_eq!(compiled.apply(&mut paid_removed), Ok(Outcome::Skip));
    }
}
