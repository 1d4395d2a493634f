//! Planning and document naming of the auto mapping, without a server.

use super::*;
use crate::model::Number;

fn config() -> ElasticsearchSinkConfig {
    toml::from_str("url = \"http://127.0.0.1:9200\"\nindex = \"t-{table}\"\nmapping = \"auto\"")
        .expect("a sink config")
}

fn n(text: &str) -> AttributeValue {
    AttributeValue::N(Number::parse(text).unwrap())
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn item(pairs: &[(&str, AttributeValue)]) -> Item {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn auto() -> (AutoMapping, Arc<str>) {
    let schema = TableSchema::new("Orders", &[("pk", KeyKind::S)]);
    let auto = AutoMapping::new("es", &config(), &[schema], &["dynamodb"]);
    (auto, Arc::from("Orders"))
}

#[test]
fn new_attributes_get_typed_fields_and_keys_their_key_type() {
    let (auto, table) = auto();
    let (first, second) = (
        item(&[
            ("pk", s("a")),
            ("price", n("3")),
            ("a.b", AttributeValue::Bool(true)),
        ]),
        item(&[("pk", s("b")), ("price", n("2.5")), ("dynamodb", s("x"))]),
    );
    let (v1, v2) = (
        SequenceNumber::parse("10").unwrap(),
        SequenceNumber::parse("20").unwrap(),
    );
    let upserts = [
        Upsert {
            table: &table,
            index: "t-orders",
            item: &first,
            version: &v1,
        },
        Upsert {
            table: &table,
            index: "t-orders",
            item: &second,
            version: &v2,
        },
    ];
    let plan = auto.plan("t-orders", &upserts);
    let fields: Vec<(&str, &FieldType)> = plan
        .iter()
        .map(|a| (a.change.column.as_str(), &a.field))
        .collect();
    assert_eq!(
        fields,
        [
            ("__a_2Eb", &FieldType::Boolean),
            ("__dynamodb", &FieldType::Keyword),
            ("pk", &FieldType::Keyword),
            ("price", &FieldType::Double),
        ],
        "a dot is escaped, the metadata field's name too, ints and decimals join"
    );
    assert_eq!(
        plan[3].change.version, v1,
        "the first change that needed it"
    );
}

#[test]
fn a_value_its_field_does_not_take_goes_under_a_suffixed_field() {
    let (mut auto, table) = auto();
    let first = item(&[("pk", s("a")), ("price", n("3"))]);
    let v1 = SequenceNumber::parse("10").unwrap();
    let upsert = Upsert {
        table: &table,
        index: "t-orders",
        item: &first,
        version: &v1,
    };
    let plan = auto.plan("t-orders", &[upsert]);
    auto.apply("t-orders", plan);
    assert!(auto.plan("t-orders", &[upsert]).is_empty(), "all mapped");

    let changed = item(&[("pk", s("a")), ("price", s("n/a")), ("tags", n("1"))]);
    let v2 = SequenceNumber::parse("20").unwrap();
    let upsert = Upsert {
        table: &table,
        index: "t-orders",
        item: &changed,
        version: &v2,
    };
    let plan = auto.plan("t-orders", &[upsert]);
    let names: Vec<&str> = plan.iter().map(|a| a.change.column.as_str()).collect();
    assert_eq!(names, ["price__s", "tags"]);
    assert!(plan[0].suffixed && plan[0].field == FieldType::Keyword);
    auto.apply("t-orders", plan);
    assert_eq!(
        auto.plain_document("t-orders", &changed),
        r#"{"pk":"a","price__s":"n/a","tags":1}"#
    );
    assert_eq!(
        auto.plain_document("t-orders", &first),
        r#"{"pk":"a","price":3}"#,
        "a value that fits stays under the attribute's own field"
    );
}

#[test]
fn history_ids_are_url_safe_and_templates_name_their_indices() {
    assert_eq!(history_id("t-orders", "price__s"), "t-orders~~price__s");
    assert!(template_names("t-{table}", "t-orders"));
    assert!(!template_names("t-{table}", "t-"));
    assert!(!template_names("t-{table}", "other"));
    assert!(template_names("fixed", "fixed"));
}
