//! Golden fixtures (AWS's documented stream record shapes) and property tests for the decoder.

use std::sync::Arc;

use dynamo_cdc::decode::{
    decode_image, decode_item, decode_record, decode_value, parse_page, DecodeError,
};
use dynamo_cdc::model::{plain_item, AttributeValue, ChangeEvent, Item, Number, Op};
use proptest::prelude::*;

fn decode_fixture(name: &str) -> Vec<ChangeEvent> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(&path).unwrap_or_else(|err| panic!("read {path}: {err}"));
    let page = parse_page(body).expect("page parses");
    let table: Arc<str> = Arc::from("Forum");
    let shard: Arc<str> = Arc::from("shardId-0001");
    page.records()
        .map(|raw| decode_record(raw, &table, &shard).expect("record decodes"))
        .collect()
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn n(text: &str) -> AttributeValue {
    AttributeValue::N(Number::parse(text).unwrap())
}

#[test]
fn getrecords_example_from_the_api_reference() {
    let events = decode_fixture("getrecords-aws-example.json");
    let ops: Vec<Op> = events.iter().map(|e| e.op).collect();
    assert_eq!(ops, [Op::Insert, Op::Modify, Op::Remove]);
    let first = &events[0];
    assert_eq!(
        first.keys,
        Item::from([
            ("ForumName".to_owned(), s("DynamoDB")),
            ("Subject".to_owned(), s("DynamoDB Thread 3")),
        ])
    );
    assert_eq!(first.position.sequence.as_str(), "300000000000000499659");
    assert_eq!(first.approx_time_ms, Some(1_464_804_310_000));
    assert_eq!(first.event_id, "e2fd9c34eff2d779b297b26f5fef4206");
    assert_eq!(first.size_bytes, 41);
    assert!(first.new_image.is_none() && first.old_image.is_none());
    assert!(events.iter().all(|e| !e.ttl_delete));
    assert!(events[0].version() < events[1].version());
}

#[test]
fn lambda_event_example_keeps_images() {
    let events = decode_fixture("lambda-event-aws-example.json");
    assert_eq!(events.len(), 3);
    let modify = &events[1];
    assert_eq!(modify.op, Op::Modify);
    assert_eq!(
        modify.new_image.as_ref().unwrap().item().unwrap()["Message"],
        s("This item has changed")
    );
    assert_eq!(
        modify.old_image.as_ref().unwrap().item().unwrap()["Message"],
        s("New item!")
    );
    assert_eq!(modify.keys["Id"], n("101"));
    assert!(events[2].new_image.is_none());
    assert!(events[2].old_image.is_some());
}

#[test]
fn ttl_delete_is_marked() {
    let events = decode_fixture("ttl-remove-aws-example.json");
    assert_eq!(events.len(), 1);
    assert!(events[0].ttl_delete);
    assert_eq!(events[0].op, Op::Remove);
    assert_eq!(
        events[0].position.sequence.as_str(),
        "4421584500000000017450439091"
    );
}

#[test]
fn user_delete_is_not_a_ttl_delete() {
    let raw = r#"{"eventID":"x","eventName":"REMOVE","dynamodb":{"Keys":{"pk":{"S":"a"}},
        "SequenceNumber":"100000000000000000001","SizeBytes":3},
        "userIdentity":{"PrincipalId":"someone","Type":"Service"}}"#;
    let event = decode_record(raw, &Arc::from("t"), &Arc::from("s")).unwrap();
    assert!(!event.ttl_delete);
}

#[test]
fn every_type_decodes_exactly() {
    let item = decode_item(
        r#"{"s":{"S":""},"n":{"N":"-12345678901234567890123456789012345678"},
            "b":{"B":"AAEC"},"t":{"BOOL":true},"z":{"NULL":true},
            "ss":{"SS":["a","b"]},"ns":{"NS":["1","1.5E+10"]},"bs":{"BS":["AA==","/w=="]},
            "l":{"L":[{"M":{}},{"L":[]},{"S":"x"}]},
            "m":{"M":{"inner":{"M":{}},"list":{"L":[{"N":"0.000000000000000000000000000000000001"}]}}}}"#,
    )
    .unwrap();
    assert_eq!(item["s"], s(""));
    assert_eq!(item["n"], n("-12345678901234567890123456789012345678"));
    assert_eq!(item["b"], AttributeValue::B(vec![0, 1, 2]));
    assert_eq!(item["z"], AttributeValue::Null);
    assert_eq!(item["bs"], AttributeValue::Bs(vec![vec![0], vec![255]]));
    assert_eq!(
        item["ns"],
        AttributeValue::Ns(vec![
            Number::parse("1").unwrap(),
            Number::parse("1.5E+10").unwrap()
        ])
    );
    let AttributeValue::M(m) = &item["m"] else {
        panic!("m is a map")
    };
    assert_eq!(m["inner"], AttributeValue::M(Item::new()));
}

#[test]
fn bare_empty_map_is_accepted_at_any_depth() {
    let nested = decode_item(r#"{"l":{"L":[{}]},"m":{"M":{"e":{}}}}"#).unwrap();
    assert_eq!(
        nested["l"],
        AttributeValue::L(vec![AttributeValue::M(Item::new())])
    );
    assert_eq!(
        nested["m"],
        AttributeValue::M(Item::from([(
            "e".to_owned(),
            AttributeValue::M(Item::new())
        )]))
    );
    // DynamoDB Local writes a top-level empty map bare too.
    let top = r#"{"pk":{"S":"a"},"top":{}}"#;
    assert_eq!(
        decode_item(top).unwrap()["top"],
        AttributeValue::M(Item::new())
    );
    let image = decode_image(top).unwrap();
    assert_eq!(image.json(), r#"{"pk":{"S":"a"},"top":{"M":{}}}"#);
    let raw = r#"{"eventID":"e","eventName":"INSERT","dynamodb":{"Keys":{"pk":{"S":"a"}},
        "NewImage":{"pk":{"S":"a"},"top":{}},"SequenceNumber":"100000000000000000009"}}"#;
    let event = decode_record(raw, &Arc::from("t"), &Arc::from("s")).unwrap();
    assert_eq!(
        event.new_image.unwrap().item().unwrap()["top"],
        AttributeValue::M(Item::new())
    );
}

/// DynamoDB JSON as DynamoDB Local writes it: every empty map (`{"M":{}}`)
/// bare (`{}`), at any depth, where `bare` says so (in walk order, cycled).
fn with_bare_empty_maps(json: &mut serde_json::Value, bare: &[bool], at: &mut usize) {
    match json {
        serde_json::Value::Object(map) => {
            let empty_map = map.len() == 1
                && map
                    .get("M")
                    .is_some_and(|m| m.as_object().is_some_and(|m| m.is_empty()));
            if empty_map && !bare.is_empty() && bare[*at % bare.len()] {
                map.clear();
            }
            if empty_map {
                *at += 1;
            }
            map.values_mut()
                .for_each(|value| with_bare_empty_maps(value, bare, at));
        }
        serde_json::Value::Array(list) => list
            .iter_mut()
            .for_each(|value| with_bare_empty_maps(value, bare, at)),
        _ => {}
    }
}

#[test]
fn malformed_values_are_errors_naming_the_path() {
    let cases = [
        (r#"{"a":{"X":"1"}}"#, "unknown type tag"),
        (r#"{"a":{"N":"1.2.3"}}"#, "not a number"),
        (r#"{"a":{"N":12}}"#, "invalid type"),
        (r#"{"a":{"S":"x","N":"1"}}"#, "second type tag"),
        (r#"{"a":{"B":"***"}}"#, "base64"),
        (r#"{"a":{"NULL":false}}"#, "NULL must be true"),
        (r#"{"a":{"M":{"b":{"L":[{"N":"x"}]}}}}"#, "not a number"),
        (r#"{"a":{"S":"x"},"a":{"S":"y"}}"#, "appears twice"),
    ];
    for (json, expected) in cases {
        // The tree decoder and the image decoder (text kept) agree.
        for err in [
            decode_item(json).unwrap_err(),
            decode_image(json).unwrap_err(),
        ] {
            let DecodeError::Value { path, message } = &err else {
                panic!("{json}: unexpected error {err:?}")
            };
            assert!(message.contains(expected), "{json}: {message}");
            assert!(
                path.starts_with('a') || message.contains("\"a\""),
                "{json}: path {path}"
            );
        }
    }
    let err = decode_image(r#"{"a":{"M":{"b":{"L":[{"N":"x"}]}}}}"#).unwrap_err();
    assert!(err.to_string().contains("at a.M.b.L[0]"), "{err}");
}

#[test]
fn malformed_record_names_the_record_and_field() {
    let raw = r#"{"eventID":"ev-9","eventName":"INSERT","dynamodb":{"Keys":{"pk":{"S":"a"}},
        "NewImage":{"pk":{"S":"a"},"price":{"N":"cheap"}},
        "SequenceNumber":"100000000000000000009","SizeBytes":3}}"#;
    let err = decode_record(raw, &Arc::from("t"), &Arc::from("s")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("ev-9"), "{text}");
    assert!(text.contains("100000000000000000009"), "{text}");
    assert!(text.contains("dynamodb.NewImage.price"), "{text}");
    assert!(text.contains("not a number"), "{text}");
}

#[test]
fn unknown_event_name_is_an_error() {
    let raw = r#"{"eventID":"e","eventName":"UPSERT","dynamodb":{"Keys":{"pk":{"S":"a"}},
        "SequenceNumber":"100000000000000000009"}}"#;
    let err = decode_record(raw, &Arc::from("t"), &Arc::from("s")).unwrap_err();
    assert!(
        err.to_string().contains("unknown event name \"UPSERT\""),
        "{err}"
    );
}

#[test]
fn bad_sequence_number_is_an_error() {
    let raw = r#"{"eventID":"e","eventName":"INSERT","dynamodb":{"Keys":{"pk":{"S":"a"}},
        "SequenceNumber":"12ab"}}"#;
    let err = decode_record(raw, &Arc::from("t"), &Arc::from("s")).unwrap_err();
    assert!(err.to_string().contains("SequenceNumber"), "{err}");
}

fn arb_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        "-?[1-9][0-9]{0,37}",
        "-?[0-9]{1,20}\\.[0-9]{1,18}",
        "-?[1-9]\\.[0-9]{1,10}E[+-]?[0-9]{1,3}",
    ]
    .prop_map(|text| Number::parse(&text).expect("strategy yields numbers"))
}

fn arb_value() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        any::<String>().prop_map(AttributeValue::S),
        arb_number().prop_map(AttributeValue::N),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(AttributeValue::B),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null),
        proptest::collection::vec(any::<String>(), 1..4).prop_map(AttributeValue::Ss),
        proptest::collection::vec(arb_number(), 1..4).prop_map(AttributeValue::Ns),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 1..4)
            .prop_map(AttributeValue::Bs),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(AttributeValue::L),
            proptest::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(AttributeValue::M),
        ]
    })
}

proptest! {
    #[test]
    fn items_round_trip_through_dynamodb_json(
        item in proptest::collection::btree_map(any::<String>(), arb_value(), 0..8)
    ) {
        let json = serde_json::to_string(&item).unwrap();
        prop_assert_eq!(decode_item(&json).unwrap(), item);
    }

    #[test]
    fn values_round_trip_through_dynamodb_json(value in arb_value()) {
        let json = serde_json::to_string(&value).unwrap();
        prop_assert_eq!(decode_value(&json).unwrap(), value);
    }

    #[test]
    fn items_round_trip_through_images(
        item in proptest::collection::btree_map(any::<String>(), arb_value(), 0..8),
        pretty in any::<bool>(),
    ) {
        let json = if pretty {
            serde_json::to_string_pretty(&item).unwrap()
        } else {
            serde_json::to_string(&item).unwrap()
        };
        let image = decode_image(&json).unwrap();
        prop_assert_eq!(image.item().unwrap(), &item);
        let text = image.json();
        prop_assert!(!text.contains('\n'), "{}", text);
        prop_assert_eq!(decode_item(&text).unwrap(), item.clone());
        // Plain JSON straight from the text equals plain JSON from the item
        // (the text lists attributes in name order, as the item does).
        prop_assert_eq!(image.plain_json().unwrap(), plain_item(&item));
    }

    #[test]
    fn bare_empty_maps_decode_alike_in_every_decoder(
        item in proptest::collection::btree_map(
            any::<String>(),
            prop_oneof![Just(AttributeValue::M(Item::new())), arb_value()],
            0..8,
        ),
        bare in proptest::collection::vec(any::<bool>(), 1..6),
    ) {
        let mut json = serde_json::to_value(&item).unwrap();
        with_bare_empty_maps(&mut json, &bare, &mut 0);
        let json = json.to_string();
        prop_assert_eq!(decode_item(&json).unwrap(), item.clone());
        let image = decode_image(&json).unwrap();
        prop_assert_eq!(image.item().unwrap(), &item);
        prop_assert_eq!(image.plain_json().unwrap(), plain_item(&item));
        let raw = format!(
            r#"{{"eventID":"e","eventName":"MODIFY","dynamodb":{{"Keys":{{"pk":{{"S":"a"}}}},"NewImage":{json},"OldImage":{json},"SequenceNumber":"100000000000000000009"}}}}"#
        );
        let event = decode_record(&raw, &Arc::from("t"), &Arc::from("s")).unwrap();
        let new_image = event.new_image.unwrap();
        prop_assert_eq!(new_image.item().unwrap(), &item);
    }

    #[test]
    fn image_and_item_decoders_accept_the_same_text(
        item in proptest::collection::btree_map("[a-c]{1,2}", arb_value(), 1..5),
        at in any::<proptest::sample::Index>(),
        with in proptest::sample::select(vec!['{', '}', '"', ':', ',', '[', ']', 'N', 'S', 'x', '1', '.', ' ', '\\']),
    ) {
        let mut json: Vec<char> = serde_json::to_string(&item).unwrap().chars().collect();
        let at = at.index(json.len());
        json[at] = with;
        let json: String = json.into_iter().collect();
        prop_assert_eq!(
            decode_item(&json).is_ok(),
            decode_image(&json).is_ok(),
            "{}", json
        );
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = decode_item(&text);
        let _ = decode_image(&text);
        let _ = decode_record(&text, &Arc::from("t"), &Arc::from("s"));
    }
}

#[test]
fn dynamodb_local_ttl_delete_is_a_ttl_remove() {
    let raw = r#"{"eventID":"43ea","eventName":"UNKNOWN_TO_SDK_VERSION","eventVersion":"1.1",
        "eventSource":"aws:dynamodb","awsRegion":"ddblocal","dynamodb":{"ApproximateCreationDateTime":1795314540.000,
        "Keys":{"pk":{"S":"a"}},"OldImage":{"pk":{"S":"a"},"exp":{"N":"1795314455"}},
        "SequenceNumber":"000000000000000007841","SizeBytes":15,"StreamViewType":"NEW_AND_OLD_IMAGES"}}"#;
    let event = decode_record(raw, &Arc::from("t"), &Arc::from("s")).unwrap();
    assert_eq!(event.op, Op::Remove);
    assert!(event.ttl_delete);
    // The same name anywhere else (not DynamoDB Local, or with a new image) stays an error.
    let elsewhere = raw.replace("ddblocal", "us-east-1");
    assert!(decode_record(&elsewhere, &Arc::from("t"), &Arc::from("s")).is_err());
}
