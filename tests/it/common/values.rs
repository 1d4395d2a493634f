//! Conversions between the engine's attribute values and the AWS SDK's.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue as Sdk;
use dynamo_cdc::model::{AttributeValue, Item, Number};

pub fn to_sdk(value: &AttributeValue) -> Sdk {
    match value {
        AttributeValue::S(s) => Sdk::S(s.clone()),
        AttributeValue::N(n) => Sdk::N(n.as_str().to_owned()),
        AttributeValue::B(b) => Sdk::B(Blob::new(b.clone())),
        AttributeValue::Bool(b) => Sdk::Bool(*b),
        AttributeValue::Null => Sdk::Null(true),
        AttributeValue::M(m) => Sdk::M(to_sdk_item(m)),
        AttributeValue::L(l) => Sdk::L(l.iter().map(to_sdk).collect()),
        AttributeValue::Ss(s) => Sdk::Ss(s.clone()),
        AttributeValue::Ns(n) => Sdk::Ns(n.iter().map(|n| n.as_str().to_owned()).collect()),
        AttributeValue::Bs(b) => Sdk::Bs(b.iter().map(|b| Blob::new(b.clone())).collect()),
    }
}

pub fn to_sdk_item(item: &Item) -> HashMap<String, Sdk> {
    item.iter().map(|(k, v)| (k.clone(), to_sdk(v))).collect()
}

pub fn from_sdk(value: &Sdk) -> AttributeValue {
    let number = |text: &str| Number::parse(text).expect("DynamoDB returns numbers");
    match value {
        Sdk::S(s) => AttributeValue::S(s.clone()),
        Sdk::N(n) => AttributeValue::N(number(n)),
        Sdk::B(b) => AttributeValue::B(b.as_ref().to_vec()),
        Sdk::Bool(b) => AttributeValue::Bool(*b),
        Sdk::Null(_) => AttributeValue::Null,
        Sdk::M(m) => AttributeValue::M(from_sdk_item(m.clone())),
        Sdk::L(l) => AttributeValue::L(l.iter().map(from_sdk).collect()),
        Sdk::Ss(s) => AttributeValue::Ss(s.clone()),
        Sdk::Ns(n) => AttributeValue::Ns(n.iter().map(|n| number(n)).collect()),
        Sdk::Bs(b) => AttributeValue::Bs(b.iter().map(|b| b.as_ref().to_vec()).collect()),
        other => panic!("unexpected SDK value {other:?}"),
    }
}

pub fn from_sdk_item(item: HashMap<String, Sdk>) -> Item {
    item.iter().map(|(k, v)| (k.clone(), from_sdk(v))).collect()
}
