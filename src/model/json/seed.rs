//! DynamoDB JSON (`{"S":"x"}`, `{"N":"1"}`, …) to [`AttributeValue`].

use std::fmt;

use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::model::{AttributeValue, Item, Number};

/// Deserializes one attribute value. DynamoDB Local's untagged empty map
/// `{}` is read as an empty map at any depth (a tagged value always has
/// exactly one key, so a bare `{}` is unambiguous).
#[derive(Clone, Copy)]
pub(super) struct ValueSeed;

/// Deserializes an item: a map of attribute names to tagged values.
#[derive(Clone, Copy, Default)]
pub struct ItemSeed;

impl<'de> DeserializeSeed<'de> for ItemSeed {
    type Value = Item;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Item, D::Error> {
        deserializer.deserialize_map(MapVisitor)
    }
}

struct MapVisitor;

impl<'de> Visitor<'de> for MapVisitor {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of attribute names to DynamoDB JSON values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
        let mut item = Item::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value_seed(ValueSeed)?;
            if item.insert(name.clone(), value).is_some() {
                return Err(de::Error::custom(format_args!(
                    "attribute {name:?} appears twice"
                )));
            }
        }
        Ok(item)
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = AttributeValue;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = AttributeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a DynamoDB JSON value such as {\"S\": \"text\"}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttributeValue, A::Error> {
        let Some(tag) = map.next_key_seed(TypeTagSeed)? else {
            // DynamoDB Local's bare `{}`: an empty map.
            return Ok(AttributeValue::M(Item::new()));
        };
        let value = match tag {
            TypeTag::S => AttributeValue::S(map.next_value()?),
            TypeTag::N => AttributeValue::N(parse_number(&map.next_value::<String>()?)?),
            TypeTag::B => AttributeValue::B(parse_base64(&map.next_value::<String>()?)?),
            TypeTag::Bool => AttributeValue::Bool(map.next_value()?),
            TypeTag::Null => {
                if !map.next_value::<bool>()? {
                    return Err(de::Error::custom("NULL must be true"));
                }
                AttributeValue::Null
            }
            TypeTag::M => AttributeValue::M(map.next_value_seed(ItemSeed)?),
            TypeTag::L => AttributeValue::L(map.next_value_seed(NestedList)?),
            TypeTag::Ss => AttributeValue::Ss(map.next_value()?),
            TypeTag::Ns => AttributeValue::Ns(
                map.next_value::<Vec<String>>()?
                    .iter()
                    .map(|text| parse_number(text))
                    .collect::<Result<_, _>>()?,
            ),
            TypeTag::Bs => AttributeValue::Bs(
                map.next_value::<Vec<String>>()?
                    .iter()
                    .map(|text| parse_base64(text))
                    .collect::<Result<_, _>>()?,
            ),
        };
        if let Some(extra) = map.next_key_seed(TypeTagSeed)? {
            return Err(de::Error::custom(format_args!(
                "attribute value has a second type tag {extra:?}"
            )));
        }
        Ok(value)
    }
}

fn parse_number<E: de::Error>(text: &str) -> Result<Number, E> {
    Number::parse(text).map_err(E::custom)
}

fn parse_base64<E: de::Error>(text: &str) -> Result<Vec<u8>, E> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|err| E::custom(format_args!("binary value is not base64: {err}")))
}

struct NestedList;

impl<'de> DeserializeSeed<'de> for NestedList {
    type Value = Vec<AttributeValue>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for NestedList {
    type Value = Vec<AttributeValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of DynamoDB JSON values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(value) = seq.next_element_seed(ValueSeed)? {
            list.push(value);
        }
        Ok(list)
    }
}

/// The ten DynamoDB type tags.
#[derive(Debug, Clone, Copy)]
pub(super) enum TypeTag {
    S,
    N,
    B,
    Bool,
    Null,
    M,
    L,
    Ss,
    Ns,
    Bs,
}

/// Reads a type tag as a map key (a plain string key, so error paths name
/// it: `price.M.total`).
pub(super) struct TypeTagSeed;

impl<'de> DeserializeSeed<'de> for TypeTagSeed {
    type Value = TypeTag;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<TypeTag, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for TypeTagSeed {
    type Value = TypeTag;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a DynamoDB type tag")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<TypeTag, E> {
        Ok(match name {
            "S" => TypeTag::S,
            "N" => TypeTag::N,
            "B" => TypeTag::B,
            "BOOL" => TypeTag::Bool,
            "NULL" => TypeTag::Null,
            "M" => TypeTag::M,
            "L" => TypeTag::L,
            "SS" => TypeTag::Ss,
            "NS" => TypeTag::Ns,
            "BS" => TypeTag::Bs,
            other => {
                return Err(E::custom(format_args!(
                "unknown type tag {other:?}, expected one of S, N, B, BOOL, NULL, M, L, SS, NS, BS"
            )))
            }
        })
    }
}

impl TypeTag {
    /// The tag as it appears in DynamoDB JSON.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::S => "S",
            Self::N => "N",
            Self::B => "B",
            Self::Bool => "BOOL",
            Self::Null => "NULL",
            Self::M => "M",
            Self::L => "L",
            Self::Ss => "SS",
            Self::Ns => "NS",
            Self::Bs => "BS",
        }
    }
}
