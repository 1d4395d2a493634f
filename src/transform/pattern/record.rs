//! The stream record a pattern is matched against, as AWS Lambda shows it
//! (`{"eventName": …, "dynamodb": {"Keys": …, "NewImage": …, "OldImage": …}}`
//! with DynamoDB-JSON values), read straight from a [`ChangeEvent`] without
//! building that JSON; and the walk of a compiled pattern over it.

use std::borrow::Cow;

use base64::Engine as _;

use super::compile::{Field, Object};
use super::operators::Leaf;
use crate::model::{AttributeValue, ChangeEvent, Image, Item, Op};

/// The principal DynamoDB's TTL process deletes items as.
const TTL_PRINCIPAL: &str = "dynamodb.amazonaws.com";

/// A place in the record.
#[derive(Debug, Clone)]
enum Node<'a> {
    /// The whole record.
    Record(&'a ChangeEvent),
    /// `dynamodb`.
    Stream(&'a ChangeEvent),
    /// `userIdentity`, present on TTL deletes only.
    Identity,
    /// Keys, an image or an `M`: attribute names to attribute values.
    Item(&'a Item),
    /// `{"S": "x"}`: an object keyed by the value's type tag.
    Attribute(&'a AttributeValue),
    /// The array of an `L`: attribute values.
    List(&'a [AttributeValue]),
    /// The array of an `SS`, `NS` or `BS`: values.
    Values(Vec<Leaf<'a>>),
    /// A value.
    Leaf(Leaf<'a>),
    /// An image that does not decode: nothing below it matches.
    Unreadable,
}

/// The `eventName` of an operation. A snapshot row (`Op::Read`) is the item
/// as it is, which a stream would have announced as an `INSERT`.
pub(super) fn event_name(op: Op) -> &'static str {
    match op {
        Op::Insert | Op::Read => "INSERT",
        Op::Modify => "MODIFY",
        Op::Remove => "REMOVE",
    }
}

impl<'a> Node<'a> {
    /// The value under `key` in an object; `None` where there is none.
    fn child(&self, key: &str) -> Option<Node<'a>> {
        match self {
            Node::Record(event) => record_field(event, key),
            Node::Stream(event) => match key {
                "Keys" => Some(Node::Item(&event.keys)),
                "NewImage" => image(event.new_image.as_ref()),
                "OldImage" => image(event.old_image.as_ref()),
                _ => None,
            },
            Node::Identity => match key {
                "type" => Some(text("Service")),
                "principalId" => Some(text(TTL_PRINCIPAL)),
                _ => None,
            },
            Node::Item(item) => item.get(key).map(Node::Attribute),
            Node::Attribute(value) => (value.type_tag() == key).then(|| content(value)),
            _ => None,
        }
    }

    /// The elements of an array.
    fn elements(&self) -> Option<Vec<Node<'a>>> {
        match self {
            Node::List(list) => Some(list.iter().map(Node::Attribute).collect()),
            Node::Values(values) => Some(values.iter().cloned().map(Node::Leaf).collect()),
            _ => None,
        }
    }

    /// The values at this place: a value itself, or the values of an array
    /// (EventBridge matches an array when any of its elements matches).
    fn leaves(&self) -> Vec<Leaf<'a>> {
        match self {
            Node::Leaf(leaf) => vec![leaf.clone()],
            Node::Values(values) => values.clone(),
            _ => Vec::new(),
        }
    }
}

fn record_field<'a>(event: &'a ChangeEvent, key: &str) -> Option<Node<'a>> {
    match key {
        "eventName" => Some(text(event_name(event.op))),
        "eventID" => Some(text(&event.event_id)),
        "eventSource" => Some(text("aws:dynamodb")),
        "dynamodb" => Some(Node::Stream(event)),
        "userIdentity" => event.ttl_delete.then_some(Node::Identity),
        _ => None,
    }
}

fn text(s: &str) -> Node<'_> {
    Node::Leaf(Leaf::Str(Cow::Borrowed(s)))
}

fn image(image: Option<&Image>) -> Option<Node<'_>> {
    image.map(|image| image.item().map_or(Node::Unreadable, Node::Item))
}

fn base64(bytes: &[u8]) -> Leaf<'static> {
    Leaf::Str(Cow::Owned(
        base64::engine::general_purpose::STANDARD.encode(bytes),
    ))
}

/// What an attribute value's type tag holds, as in DynamoDB JSON.
fn content(value: &AttributeValue) -> Node<'_> {
    match value {
        AttributeValue::S(s) => text(s),
        AttributeValue::N(n) => Node::Leaf(Leaf::Num(n.as_str())),
        AttributeValue::B(b) => Node::Leaf(base64(b)),
        AttributeValue::Bool(b) => Node::Leaf(Leaf::Bool(*b)),
        AttributeValue::Null => Node::Leaf(Leaf::Bool(true)),
        AttributeValue::M(item) => Node::Item(item),
        AttributeValue::L(list) => Node::List(list),
        AttributeValue::Ss(set) => {
            Node::Values(set.iter().map(|s| Leaf::Str(Cow::Borrowed(s))).collect())
        }
        AttributeValue::Ns(set) => {
            Node::Values(set.iter().map(|n| Leaf::Num(n.as_str())).collect())
        }
        AttributeValue::Bs(set) => Node::Values(set.iter().map(|b| base64(b)).collect()),
    }
}

/// Whether `pattern` matches the record of `event`.
pub(super) fn matches(pattern: &Object, event: &ChangeEvent) -> bool {
    object_matches(pattern, Some(&Node::Record(event)))
}

/// Whether `pattern` could match some record that lacks the image named
/// `image` (`NewImage` or `OldImage`): exact for the image's own
/// conditions, and assuming everything else of the record can match.
pub(super) fn can_match_without(pattern: &Object, image: &str) -> bool {
    satisfiable(pattern, &|key, field| match (key, field) {
        ("dynamodb", Field::Object(stream)) => satisfiable(stream, &|key, field| match field {
            Field::Object(object) if key == image => object_matches(object, None),
            _ => key != image,
        }),
        _ => true,
    })
}

/// Whether every field of `object` and one alternative of each `$or` can
/// hold, as `field_ok` judges each field.
fn satisfiable(object: &Object, field_ok: &dyn Fn(&str, &Field) -> bool) -> bool {
    object
        .fields
        .iter()
        .all(|(key, field)| field_ok(key, field))
        && object
            .any_of
            .iter()
            .all(|alternatives| alternatives.iter().any(|a| satisfiable(a, field_ok)))
}

/// An object pattern at a place (`None`: the record has nothing there, and
/// only `exists: false` conditions can hold). On an array it must match
/// one element as a whole; an empty array is nothing.
fn object_matches(object: &Object, node: Option<&Node<'_>>) -> bool {
    if let Some(node) = node {
        if matches!(node, Node::Unreadable) {
            return false;
        }
        if let Some(elements) = node.elements() {
            return match elements.is_empty() {
                true => object_matches(object, None),
                false => elements.iter().any(|e| object_matches(object, Some(e))),
            };
        }
    }
    let fields = object.fields.iter().all(|(key, field)| {
        let child = node.and_then(|n| n.child(key));
        field_matches(field, child.as_ref())
    });
    fields
        && object
            .any_of
            .iter()
            .all(|alternatives| alternatives.iter().any(|a| object_matches(a, node)))
}

fn field_matches(field: &Field, node: Option<&Node<'_>>) -> bool {
    match field {
        Field::Object(object) => object_matches(object, node),
        Field::Values(_) if matches!(node, Some(Node::Unreadable)) => false,
        Field::Values(matchers) => {
            let leaves = node.map(Node::leaves).unwrap_or_default();
            matchers.iter().any(|m| m.accepts(&leaves))
        }
    }
}
