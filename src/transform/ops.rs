//! Rename, drop, cast and filter over the images of a change event. Key
//! attributes are left alone: sinks key their rows on them.

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

/// Applies `transforms` in order. An error (a cast that does not fit) is
/// meant for the dead-letter file.
pub fn apply_transforms(
    transforms: &[TransformConfig],
    event: &mut ChangeEvent,
) -> Result<Outcome, String> {
    for transform in transforms {
        match transform {
            TransformConfig::Rename { from, to } => {
                for image in images(event)? {
                    if let Some(value) = image.remove(from) {
                        image.insert(to.clone(), value);
                    }
                }
            }
            TransformConfig::Drop { attributes } => {
                for image in images(event)? {
                    for name in attributes {
                        image.remove(name);
                    }
                }
            }
            TransformConfig::Cast { attribute, to } => {
                for image in images(event)? {
                    if let Some(value) = image.get_mut(attribute) {
                        *value = cast(value, *to)
                            .map_err(|reason| format!("cast of {attribute:?}: {reason}"))?;
                    }
                }
            }
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
        }
    }
    Ok(Outcome::Keep)
}

/// The event's images as attributes, decoded for editing.
fn images(event: &mut ChangeEvent) -> Result<Vec<&mut Item>, String> {
    event
        .new_image
        .iter_mut()
        .chain(event.old_image.iter_mut())
        .map(|image| {
            image
                .item_mut()
                .map_err(|e| format!("image does not decode: {e}"))
        })
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

fn cast(value: &AttributeValue, to: CastTarget) -> Result<AttributeValue, String> {
    match (to, value) {
        (_, AttributeValue::Null) => Ok(AttributeValue::Null),
        (CastTarget::Number, AttributeValue::N(_)) => Ok(value.clone()),
        (CastTarget::Number, AttributeValue::S(s)) => Number::parse(s.trim())
            .map(AttributeValue::N)
            .map_err(|e| e.to_string()),
        (CastTarget::TimestampMs | CastTarget::TimestampS, AttributeValue::S(s)) => {
            let time = humantime::parse_rfc3339_weak(s.trim())
                .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))?;
            let since = time
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| format!("{s:?} is before 1970"))?;
            let number = if to == CastTarget::TimestampMs {
                since.as_millis().to_string()
            } else {
                since.as_secs().to_string()
            };
            Number::parse(&number)
                .map(AttributeValue::N)
                .map_err(|e| e.to_string())
        }
        (CastTarget::TimestampMs | CastTarget::TimestampS, AttributeValue::N(_)) => {
            Ok(value.clone())
        }
        (_, other) => Err(format!(
            "a {} value cannot be cast to {to:?}",
            other.type_tag()
        )),
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
        assert_eq!(apply_transforms(&transforms, &mut e), Ok(Outcome::Keep));
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
        assert!(apply_transforms(&transforms, &mut bad)
            .unwrap_err()
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
        assert_eq!(apply_transforms(&keep_paid, &mut paid), Ok(Outcome::Keep));
        assert_eq!(apply_transforms(&keep_paid, &mut new), Ok(Outcome::Skip));
        assert_eq!(
            apply_transforms(&keep_paid, &mut removed),
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
            apply_transforms(&drop_removes, &mut removed),
            Ok(Outcome::Skip)
        );
        assert_eq!(
            apply_transforms(&drop_removes, &mut paid),
            Ok(Outcome::Keep)
        );
    }
}
