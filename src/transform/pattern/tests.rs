//! The DynamoDB examples of AWS Lambda's "Using event filtering with a
//! DynamoDB event source" and "Lambda event filtering" pages, reproduced
//! as written, each with records that must and must not match; and the
//! `Filters` list. Records go through the crate's own stream-record
//! decoder, as they would in production.

use std::sync::Arc;

use super::{FilterPattern, Filters};
use crate::decode::decode_record;
use crate::model::{ChangeEvent, Image, Op};

/// One row of a table: a pattern, a record, whether it must match.
pub(super) struct Case {
    pub(super) note: &'static str,
    pub(super) pattern: &'static str,
    pub(super) record: String,
    pub(super) matches: bool,
}

/// Decodes a stream record as the source would.
pub(super) fn event(record: &str) -> ChangeEvent {
    decode_record(record, &Arc::from("t"), &Arc::from("shardId-1"))
        .unwrap_or_else(|err| panic!("test record does not decode: {err}\n{record}"))
}

/// A Lambda-shaped stream record with `event_name` and the given members
/// of `dynamodb` (`"Keys":{…},"NewImage":{…}`).
pub(super) fn record(event_name: &str, dynamodb: &str) -> String {
    format!(
        r#"{{"eventID":"1","eventName":"{event_name}","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1","dynamodb":{{{dynamodb},"SequenceNumber":"111","SizeBytes":26,"StreamViewType":"NEW_AND_OLD_IMAGES"}}}}"#
    )
}

/// Runs a table; returns how many cases passed, panics listing every
/// failure.
pub(super) fn run(cases: &[Case]) -> usize {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let pattern = match FilterPattern::parse(case.pattern) {
                Ok(pattern) => pattern,
                Err(err) => return Some(format!("{}: does not parse: {err}", case.note)),
            };
            let got = pattern.matches(&event(&case.record));
            (got != case.matches).then(|| {
                format!(
                    "{}: expected matches = {}\n  pattern {}\n  record  {}",
                    case.note, case.matches, case.pattern, case.record
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    cases.len()
}

fn case(note: &'static str, pattern: &'static str, record: String, matches: bool) -> Case {
    Case {
        note,
        pattern,
        record,
        matches,
    }
}

/// The example record of "Using event filtering with a DynamoDB event
/// source", as printed there except for what a stream record has and the
/// page leaves out: an `eventName`, and `ApproximateCreationDateTime` as
/// the number DynamoDB sends (the page shows a string).
const DOC_RECORD: &str = r#"{ "eventID": "1", "eventName": "INSERT", "eventVersion": "1.0", "dynamodb": { "ApproximateCreationDateTime": 1678831218.0, "Keys": { "CustomerName": { "S": "AnyCompany Industries" } }, "NewImage": { "AccountManager": { "S": "Pat Candella" }, "PaymentTerms": { "S": "60 days" }, "CustomerName": { "S": "AnyCompany Industries" } }, "SequenceNumber": "111", "SizeBytes": 26, "StreamViewType": "NEW_IMAGE" } }"#;

/// "Filtering with table keys".
const KEYS: &str =
    r#"{ "dynamodb": { "Keys": { "CustomerName": { "S": [ "AnyCompany Industries" ] } } } }"#;
/// "Filtering with table attributes".
const ATTRIBUTES: &str = r#"{ "dynamodb": { "NewImage": { "AccountManager": { "S": [ "Pat Candella", "Shirley Rodriguez" ] } } } }"#;
/// "Filtering with Boolean expressions": `dynamodb` twice, ANDed.
const BOOLEAN: &str = r#"{ "dynamodb" : { "NewImage" : { "AccountManager" : { "S" : [ "Pat Candella" ] } } } , "dynamodb" : { "OldImage" : { "AccountManager" : { "S" : [ "Terry Whitlock" ] } } } }"#;
/// "Using the Exists operator": the pattern that never matches…
const EXISTS_WRONG: &str =
    r#"{ "dynamodb" : { "NewImage" : { "Organizations" : [ { "exists": true } ] } } }"#;
/// …and the right one.
const EXISTS_RIGHT: &str = r#"{ "dynamodb" : { "NewImage" : {"Organizations": {"L": {"S": [ {"exists": true } ] } } } } }"#;
/// "Multi-level filtering" (Lambda event filtering page).
const MULTI_LEVEL: &str = r#"{ "dynamodb": { "Keys": { "Id": { "N": [ "101" ] } } } }"#;
/// The AWS CDK `FilterCriteria` example: `FilterRule.isEqual` makes lists.
const CDK: &str =
    r#"{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"id": {"BOOL": [true]}}}}"#;

fn customer(name: &str) -> String {
    format!(r#""Keys":{{"CustomerName":{{"S":"{name}"}}}}"#)
}

fn manager(image: &str, name: &str) -> String {
    format!(
        r#""{image}":{{"CustomerName":{{"S":"AnyCompany Industries"}},"AccountManager":{{"S":"{name}"}}}}"#
    )
}

fn managers(old: &str, new: &str) -> String {
    let keys = customer("AnyCompany Industries");
    record(
        "MODIFY",
        &format!(
            "{keys},{},{}",
            manager("OldImage", old),
            manager("NewImage", new)
        ),
    )
}

fn organizations(organizations: &str) -> String {
    record(
        "INSERT",
        &format!(
            r#""Keys":{{"UserID":{{"S":"12345"}}}},"NewImage":{{"UserID":{{"S":"12345"}},"Name":{{"S":"John Doe"}}{organizations}}}"#
        ),
    )
}

const JOHN_DOE_ORGANIZATIONS: &str =
    r#","Organizations":{"L":[{"S":"Sales"},{"S":"Marketing"},{"S":"Support"}]}"#;

#[rustfmt::skip]
fn lambda_doc_cases() -> Vec<Case> {
    let keys = customer("AnyCompany Industries");
    let with_manager = |image, name| record("INSERT", &format!("{keys},{}", manager(image, name)));
    let removed = record("REMOVE", &format!("{keys},{}", manager("OldImage", "Pat Candella")));
    let item = |id: &str| format!(r#""Keys":{{"Id":{{"N":"{id}"}}}},"NewImage":{{"Message":{{"S":"New item!"}},"Id":{{"N":"{id}"}}}}"#);
    let flag = |name, id: &str| record(name, &format!(r#""Keys":{{"pk":{{"S":"a"}}}},"NewImage":{{"pk":{{"S":"a"}},"id":{{"BOOL":{id}}}}}"#));
    vec![
        case("keys: the page's record", KEYS, DOC_RECORD.to_owned(), true),
        case("keys: another customer", KEYS, record("INSERT", &customer("Example Corp")), false),
        case("attributes: Pat", ATTRIBUTES, DOC_RECORD.to_owned(), true),
        case("attributes: Shirley", ATTRIBUTES, with_manager("NewImage", "Shirley Rodriguez"), true),
        case("attributes: Terry", ATTRIBUTES, with_manager("NewImage", "Terry Whitlock"), false),
        case("attributes: Pat only in the old image", ATTRIBUTES, removed, false),
        case("boolean: Terry to Pat", BOOLEAN, managers("Terry Whitlock", "Pat Candella"), true),
        case("boolean: Shirley to Pat", BOOLEAN, managers("Shirley Rodriguez", "Pat Candella"), false),
        case("boolean: Terry to Shirley", BOOLEAN, managers("Terry Whitlock", "Shirley Rodriguez"), false),
        case("boolean: an insert has no old image", BOOLEAN, DOC_RECORD.to_owned(), false),
        case("exists on an intermediate node never matches", EXISTS_WRONG, organizations(JOHN_DOE_ORGANIZATIONS), false),
        case("exists on the list's leaves", EXISTS_RIGHT, organizations(JOHN_DOE_ORGANIZATIONS), true),
        case("exists: no Organizations", EXISTS_RIGHT, organizations(""), false),
        case("exists: an empty list", EXISTS_RIGHT, organizations(r#","Organizations":{"L":[]}"#), false),
        case("exists: a list of numbers", EXISTS_RIGHT, organizations(r#","Organizations":{"L":[{"N":"1"}]}"#), false),
        case("multi-level: Id 101", MULTI_LEVEL, record("INSERT", &item("101")), true),
        case("multi-level: Id 102", MULTI_LEVEL, record("INSERT", &item("102")), false),
        case("multi-level: a string is not a number", MULTI_LEVEL, record("INSERT", r#""Keys":{"Id":{"S":"101"}}"#), false),
        case("cdk: insert with id true", CDK, flag("INSERT", "true"), true),
        case("cdk: modify", CDK, flag("MODIFY", "true"), false),
        case("cdk: id false", CDK, flag("INSERT", "false"), false),
    ]
}

#[test]
fn aws_lambda_dynamodb_examples() {
    assert_eq!(run(&lambda_doc_cases()), 21);
}

#[test]
fn a_snapshot_row_is_an_insert() {
    let mut row = event(DOC_RECORD);
    row.op = Op::Read;
    assert!(FilterPattern::parse(r#"{"eventName": ["INSERT"]}"#)
        .unwrap()
        .matches(&row));
    assert!(
        !FilterPattern::parse(r#"{"eventName": ["MODIFY", "REMOVE"]}"#)
            .unwrap()
            .matches(&row)
    );
}

#[test]
fn ttl_deletes_carry_the_service_identity() {
    let pattern = FilterPattern::parse(
        r#"{"userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]}}"#,
    )
    .unwrap();
    let mut removal = event(&record("REMOVE", &customer("A")));
    assert!(!pattern.matches(&removal));
    removal.ttl_delete = true;
    assert!(pattern.matches(&removal));
    let absent =
        FilterPattern::parse(r#"{"userIdentity": {"type": [{"exists": false}]}}"#).unwrap();
    assert!(!absent.matches(&removal));
}

#[test]
fn an_image_that_does_not_decode_matches_nothing_below_it() {
    let mut change = event(&managers("Terry Whitlock", "Pat Candella"));
    change.new_image = Some(Image::from_validated_json("{not json".to_owned()));
    for pattern in [
        ATTRIBUTES,
        r#"{"dynamodb": {"NewImage": {"AccountManager": {"S": [{"exists": false}]}}}}"#,
        r#"{"dynamodb": {"NewImage": {"AccountManager": [{"exists": false}]}}}"#,
    ] {
        assert!(
            !FilterPattern::parse(pattern).unwrap().matches(&change),
            "{pattern}"
        );
    }
    // The rest of the record still matches.
    let old = r#"{"dynamodb": {"OldImage": {"AccountManager": {"S": ["Terry Whitlock"]}}}}"#;
    assert!(FilterPattern::parse(old).unwrap().matches(&change));
}

#[test]
fn filters_or_their_patterns() {
    let filters = Filters::parse(&[
        r#"{"eventName": ["REMOVE"]}"#.to_owned(),
        ATTRIBUTES.to_owned(),
        KEYS.to_owned(),
    ])
    .unwrap();
    assert_eq!(filters.patterns().len(), 3);
    assert_eq!(filters.first_match(&event(DOC_RECORD)), Some(1));
    assert!(filters.matches(&event(DOC_RECORD)));
    let other = event(&record("MODIFY", &customer("Example Corp")));
    assert_eq!(filters.first_match(&other), None);
    assert!(!filters.matches(&other));
}

#[test]
fn no_filters_pass_everything() {
    let filters = Filters::parse::<String>(&[]).unwrap();
    assert!(filters.is_empty());
    assert!(filters.matches(&event(DOC_RECORD)));
    assert_eq!(filters.first_match(&event(DOC_RECORD)), None);
    assert!(Filters::default().matches(&event(DOC_RECORD)));
}

#[test]
fn patterns_from_values_and_from_str() {
    let value: serde_json::Value = serde_json::from_str(KEYS).unwrap();
    let from_value = FilterPattern::from_value(&value).unwrap();
    let from_str: FilterPattern = KEYS.parse().unwrap();
    assert!(from_value.matches(&event(DOC_RECORD)));
    assert!(from_str.matches(&event(DOC_RECORD)));
    let filters = Filters::new(vec![from_value, from_str]);
    assert_eq!(filters.first_match(&event(DOC_RECORD)), Some(0));
}
