//! Patterns that must not compile, with the place and reason they report.

use super::{FilterPattern, Filters, PatternError};

/// `(pattern, the error as displayed)`.
#[rustfmt::skip]
const ERRORS: &[(&str, &str)] = &[
    (r#"["eventName"]"#, "a pattern is a JSON object, not an array"),
    (r#""INSERT""#, "a pattern is a JSON object, not a string"),
    ("{}", "empty object: a pattern object names at least one field"),
    (r#"{"eventName": "INSERT"}"#, r#"eventName: expected a list of values (such as ["x"]) or an object, found a string"#),
    (r#"{"dynamodb": 5}"#, r#"dynamodb: expected a list of values (such as ["x"]) or an object, found a number"#),
    (r#"{"eventName": []}"#, "eventName: empty list: it would match nothing"),
    (r#"{"eventName": [["INSERT"]]}"#, "eventName[0]: a value list cannot hold an array"),
    (r#"{"eventName": {"S": ["INSERT"]}}"#, r#"eventName: this field holds a value: match it with a list such as ["x"], not an object"#),
    (r#"{"dynamodb": {}}"#, "dynamodb: empty object: a pattern object names at least one field"),
    (r#"{"dynamodb": {"NewImage": {"status": {"S": [{"prefx": "p"}]}}}}"#, r#"dynamodb.NewImage.status.S[0]: unknown operator "prefx""#),
    (r#"{"dynamodb": {"NewImage": {"status": {"S": ["a", {"wildcard": "*.png"}]}}}}"#, r#"dynamodb.NewImage.status.S[1]: operator "wildcard" is not supported"#),
    (r#"{"awsRegion": ["us-east-1"]}"#, r#"awsRegion: unknown record field "awsRegion" (expected eventName, eventID, eventSource, userIdentity or dynamodb)"#),
    (r#"{"dynamodb": {"NewImge": {"a": {"S": ["x"]}}}}"#, r#"dynamodb.NewImge: unknown field "NewImge" of dynamodb (expected Keys, NewImage or OldImage)"#),
    (r#"{"userIdentity": {"kind": ["Service"]}}"#, r#"userIdentity.kind: unknown field "kind" of userIdentity (expected type or principalId)"#),
    (r#"{"dynamodb": {"Keys": {"pk": {"s": ["x"]}}}}"#, r#"dynamodb.Keys.pk.s: unknown DynamoDB type "s" (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS)"#),
    (r#"{"dynamodb": {"Keys": {"pk": {"S": {"prefix": "x"}}}}}"#, r#"dynamodb.Keys.pk.S: this field holds a value: match it with a list such as ["x"], not an object"#),
    (r#"{"dynamodb": {"NewImage": {"m": {"M": {"a": {"L": {"Q": ["x"]}}}}}}}"#, r#"dynamodb.NewImage.m.M.a.L.Q: unknown DynamoDB type "Q" (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS)"#),
    (r#"{"eventName": [{"prefix": "I", "suffix": "T"}]}"#, r#"eventName[0]: an operator object has exactly one key, such as {"prefix": "us-"}; this one has 2"#),
    (r#"{"eventName": [{}]}"#, r#"eventName[0]: an operator object has exactly one key, such as {"prefix": "us-"}; this one has 0"#),
    (r#"{"eventName": [{"prefix": 1}]}"#, "eventName[0].prefix: expected a string, found a number"),
    (r#"{"eventName": [{"suffix": {"ignore-case": "T"}}]}"#, r#"eventName[0].suffix: expected a string or {"equals-ignore-case": "…"}"#),
    (r#"{"eventName": [{"equals-ignore-case": ["insert"]}]}"#, "eventName[0].equals-ignore-case: expected a string, found an array"),
    (r#"{"eventName": [{"exists": "yes"}]}"#, "eventName[0].exists: exists takes true or false, not a string"),
    (r#"{"eventName": [{"anything-but": []}]}"#, "eventName[0].anything-but: empty list"),
    (r#"{"eventName": [{"anything-but": ["a", 1]}]}"#, "eventName[0].anything-but[1]: expected only strings or only numbers, found a number"),
    (r#"{"eventName": [{"anything-but": [1, null]}]}"#, "eventName[0].anything-but[1]: expected only strings or only numbers, found null"),
    (r#"{"eventName": [{"anything-but": true}]}"#, "eventName[0].anything-but: anything-but takes a string, a number, a list of them or an operator object, not a boolean"),
    (r#"{"eventName": [{"anything-but": {"prefix": 1}}]}"#, "eventName[0].anything-but.prefix: expected a string, found a number"),
    (r#"{"eventName": [{"anything-but": {"wildcard": "*"}}]}"#, r#"eventName[0].anything-but: unknown anything-but operator "wildcard" (expected prefix, suffix or equals-ignore-case)"#),
    (r#"{"eventName": [{"anything-but": {"prefix": "a", "suffix": "b"}}]}"#, "eventName[0].anything-but: an anything-but object has exactly one key: prefix, suffix or equals-ignore-case"),
    (r#"{"dynamodb": {"NewImage": {"n": {"N": [{"numeric": [">", 0, ">", 5]}]}}}}"#, "dynamodb.NewImage.n.N[0].numeric: a range is a lower bound (> or >=) followed by an upper bound (< or <=)"),
    (r#"{"dynamodb": {"NewImage": {"n": {"N": [{"numeric": ["<", 5, ">", 0]}]}}}}"#, "dynamodb.NewImage.n.N[0].numeric: a range is a lower bound (> or >=) followed by an upper bound (< or <=)"),
    (r#"{"dynamodb": {"NewImage": {"n": {"N": [{"numeric": ["=", 1, "<", 2]}]}}}}"#, "dynamodb.NewImage.n.N[0].numeric: a range is a lower bound (> or >=) followed by an upper bound (< or <=)"),
    (r#"{"dynamodb": {"NewImage": {"n": {"N": [{"numeric": ["=>", 5]}]}}}}"#, r#"dynamodb.NewImage.n.N[0].numeric[0]: unknown numeric operator "=>" (expected =, <, <=, >, >=)"#),
    (r#"{"dynamodb": {"NewImage": {"n": {"N": [{"numeric": [5, ">"]}]}}}}"#, r#"dynamodb.NewImage.n.N[0].numeric[0]: expected an operator such as ">", found a number"#),
    (r#"{"dynamodb": {"NewImage": {"n": {"N": [{"numeric": [">", "5"]}]}}}}"#, "dynamodb.NewImage.n.N[0].numeric[1]: expected a number, found a string"),
    (r#"{"dynamodb": {"NewImage": {"n": {"N": [{"numeric": [">", 1, "<", "5"]}]}}}}"#, "dynamodb.NewImage.n.N[0].numeric[3]: expected a number, found a string"),
    (r#"{"dynamodb": {"NewImage": {"n": {"N": [{"numeric": [">", 5, "<", 5]}]}}}}"#, "dynamodb.NewImage.n.N[0].numeric: the range is empty: no number is > 5 and < 5"),
    (r#"{"dynamodb": {"NewImage": {"n": {"N": [{"numeric": [">=", 1e1, "<", 9]}]}}}}"#, "dynamodb.NewImage.n.N[0].numeric: the range is empty: no number is >= 1e1 and < 9"),
    (r#"{"dynamodb": {"NewImage": {"n": {"N": [{"numeric": [">"]}]}}}}"#, r#"dynamodb.NewImage.n.N[0].numeric: numeric takes [operator, number] or [lower operator, number, upper operator, number], such as [">", 0, "<=", 5]; operators are =, <, <=, >, >="#),
    (r#"{"dynamodb": {"NewImage": {"n": {"N": [{"numeric": 5}]}}}}"#, r#"dynamodb.NewImage.n.N[0].numeric: numeric takes [operator, number] or [lower operator, number, upper operator, number], such as [">", 0, "<=", 5]; operators are =, <, <=, >, >="#),
    (r#"{"$or": {"eventName": ["INSERT"]}}"#, "$or: $or takes a list of pattern objects, not an object"),
    (r#"{"$or": []}"#, "$or: $or needs at least one pattern object"),
    (r#"{"$or": [["INSERT"]]}"#, "$or[0]: a $or alternative is a pattern object, not an array"),
    (r#"{"$or": [{"eventName": ["INSERT"]}, {}]}"#, "$or[1]: empty object: a pattern object names at least one field"),
    (r#"{"dynamodb": {"$or": [{"Keys": {"a": {"S": ["x"]}}}, {"NewImge": {"a": {"S": ["x"]}}}]}}"#, r#"dynamodb.$or[1].NewImge: unknown field "NewImge" of dynamodb (expected Keys, NewImage or OldImage)"#),
];

#[test]
fn bad_patterns_say_where_and_why() {
    let mismatches: Vec<String> = ERRORS
        .iter()
        .filter_map(|&(pattern, expected)| match FilterPattern::parse(pattern) {
            Ok(_) => Some(format!("{pattern}: parsed")),
            Err(err) if err.to_string() == expected => None,
            Err(err) => Some(format!(
                "{pattern}:\n  got      {err}\n  expected {expected}"
            )),
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(ERRORS.len(), 46);
}

#[test]
fn invalid_json_is_reported_with_its_position() {
    let err = FilterPattern::parse(r#"{"eventName": ["INSERT"],}"#).unwrap_err();
    assert_eq!(err.path, "");
    assert!(
        err.message.starts_with("not valid JSON: ") && err.message.contains("line 1 column"),
        "{err}"
    );
}

#[test]
fn errors_carry_their_path_and_pattern_index() {
    let patterns = [
        r#"{"eventName": ["INSERT"]}"#,
        r#"{"dynamodb": {"NewImage": {"status": {"S": [{"prefx": "p"}]}}}}"#,
    ];
    let err = Filters::parse(&patterns).unwrap_err();
    assert_eq!(
        err,
        PatternError {
            filter: Some(1),
            path: "dynamodb.NewImage.status.S[0]".to_owned(),
            message: r#"unknown operator "prefx""#.to_owned(),
        }
    );
    assert_eq!(
        format!("tables[0].{err}"),
        r#"tables[0].filters[1]: dynamodb.NewImage.status.S[0]: unknown operator "prefx""#
    );
}

#[test]
fn edge_patterns_that_are_valid() {
    for pattern in [
        // A one-point range, and an empty prefix (every string).
        r#"{"dynamodb": {"NewImage": {"n": {"N": [{"numeric": [">=", 5, "<=", 5.0]}]}}}}"#,
        r#"{"eventName": [{"prefix": ""}]}"#,
        // Lists at object places: valid, they only ever match exists: false.
        r#"{"dynamodb": {"NewImage": [{"exists": false}]}}"#,
        r#"{"dynamodb": {"NewImage": {"Organizations": [{"exists": true}]}}}"#,
        // Any attribute name, including ones that look like type tags.
        r#"{"dynamodb": {"Keys": {"S": {"S": ["x"]}, "with.dot": {"N": [1]}}}}"#,
    ] {
        assert!(FilterPattern::parse(pattern).is_ok(), "{pattern}");
    }
}

#[test]
fn patterns_say_which_images_they_need() {
    use super::{FilterPattern, Filters, ImagePart};
    let needs = |pattern: &str| {
        let pattern = FilterPattern::parse(pattern).unwrap();
        (
            pattern.needs_image(ImagePart::New),
            pattern.needs_image(ImagePart::Old),
        )
    };
    assert_eq!(needs(r#"{"eventName": ["REMOVE"]}"#), (false, false));
    assert_eq!(
        needs(r#"{"dynamodb": {"NewImage": {"status": {"S": ["paid"]}}}}"#),
        (true, false)
    );
    assert_eq!(
        needs(
            r#"{"eventName": ["MODIFY"], "dynamodb": {"OldImage": {"n": {"N": [{"numeric": [">", 1]}]}}}}"#
        ),
        (false, true)
    );
    // `exists: false` holds without the image; so does another `$or` branch.
    assert_eq!(
        needs(r#"{"dynamodb": {"NewImage": {"gone": [{"exists": false}]}}}"#),
        (false, false)
    );
    assert_eq!(
        needs(
            r#"{"$or": [{"dynamodb": {"NewImage": {"a": {"S": ["x"]}}}}, {"eventName": ["REMOVE"]}]}"#
        ),
        (false, false)
    );
    assert_eq!(
        needs(
            r#"{"dynamodb": {"Keys": {"pk": {"S": ["a"]}}, "$or": [{"NewImage": {"a": {"S": ["x"]}}}, {"NewImage": {"b": {"S": ["y"]}}}]}}"#
        ),
        (true, false)
    );
    let filters = Filters::parse(&[
        r#"{"dynamodb": {"NewImage": {"a": {"S": ["x"]}}}}"#,
        r#"{"eventName": ["REMOVE"]}"#,
    ])
    .unwrap();
    assert!(!filters.all_need_image(ImagePart::New));
    assert!(!Filters::default().all_need_image(ImagePart::New));
}
