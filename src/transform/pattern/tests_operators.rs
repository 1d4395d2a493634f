//! The comparison operators of Amazon EventBridge's (and AWS Lambda's)
//! operator table, each written against a DynamoDB image, with values that
//! must and must not match; and the DynamoDB types: sets, maps, lists,
//! binary, booleans, 38-digit numbers.

use super::tests::{record, run, Case};

/// An item holding one attribute per example of the operator table.
const ITEM: &str = r#""Keys":{"pk":{"S":"order#1"}},"NewImage":{"pk":{"S":"order#1"},"Name":{"S":"Alice"},"LastName":{"S":""},"Location":{"S":"New York"},"Day":{"S":"Monday"},"PaymentType":{"S":"Credit"},"Weather":{"S":"Sunny"},"Price":{"N":"100"},"ProductName":{"S":"Widget"},"Region":{"S":"us-east-1"},"FileName":{"S":"photo.PNG"},"UserID":{"NULL":true},"tags":{"SS":["red","blue"]},"sizes":{"NS":["1","10.5"]},"flag":{"BOOL":true},"bin":{"B":"AP8="},"big":{"N":"12345678901234567890123456789012345678"},"address":{"M":{"city":{"S":"Paris"},"zip":{"N":"75001"}}},"lines":{"L":[{"M":{"sku":{"S":"a"},"qty":{"N":"1"}}},{"M":{"sku":{"S":"b"},"qty":{"N":"5"}}}]}}"#;

/// `(note, pattern, must match)`, each on an `INSERT` of [`ITEM`].
#[rustfmt::skip]
const CASES: &[(&str, &str, bool)] = &[
    ("null", r#"{"dynamodb":{"NewImage":{"UserID":{"NULL":[true]}}}}"#, true),
    ("null: not null", r#"{"dynamodb":{"NewImage":{"Name":{"NULL":[true]}}}}"#, false),
    ("null: JSON null is never in a record", r#"{"dynamodb":{"NewImage":{"Name":{"S":[null]}}}}"#, false),
    ("empty", r#"{"dynamodb":{"NewImage":{"LastName":{"S":[""]}}}}"#, true),
    ("empty: not empty", r#"{"dynamodb":{"NewImage":{"Name":{"S":[""]}}}}"#, false),
    ("equals", r#"{"dynamodb":{"NewImage":{"Name":{"S":["Alice"]}}}}"#, true),
    ("equals: case matters", r#"{"dynamodb":{"NewImage":{"Name":{"S":["alice"]}}}}"#, false),
    ("equals-ignore-case", r#"{"dynamodb":{"NewImage":{"Name":{"S":[{"equals-ignore-case":"ALICE"}]}}}}"#, true),
    ("equals-ignore-case: other", r#"{"dynamodb":{"NewImage":{"Name":{"S":[{"equals-ignore-case":"bob"}]}}}}"#, false),
    ("and", r#"{"dynamodb":{"NewImage":{"Location":{"S":["New York"]},"Day":{"S":["Monday"]}}}}"#, true),
    ("and: one fails", r#"{"dynamodb":{"NewImage":{"Location":{"S":["New York"]},"Day":{"S":["Tuesday"]}}}}"#, false),
    ("or", r#"{"dynamodb":{"NewImage":{"PaymentType":{"S":["Credit","Debit"]}}}}"#, true),
    ("or: none", r#"{"dynamodb":{"NewImage":{"PaymentType":{"S":["Cash","Debit"]}}}}"#, false),
    ("$or over fields", r#"{"dynamodb":{"NewImage":{"$or":[{"Location":{"S":["Paris"]}},{"Day":{"S":["Monday"]}}]}}}"#, true),
    ("$or over fields: none", r#"{"dynamodb":{"NewImage":{"$or":[{"Location":{"S":["Paris"]}},{"Day":{"S":["Sunday"]}}]}}}"#, false),
    ("$or at the top", r#"{"$or":[{"eventName":["REMOVE"]},{"dynamodb":{"Keys":{"pk":{"S":[{"prefix":"order#"}]}}}}]}"#, true),
    ("$or with other fields", r#"{"eventName":["MODIFY"],"$or":[{"eventName":["INSERT"]},{"eventID":["1"]}]}"#, false),
    ("anything-but list", r#"{"dynamodb":{"NewImage":{"Weather":{"S":[{"anything-but":["Raining"]}]}}}}"#, true),
    ("anything-but list: refused", r#"{"dynamodb":{"NewImage":{"Weather":{"S":[{"anything-but":["Sunny","Raining"]}]}}}}"#, false),
    ("anything-but value: refused", r#"{"dynamodb":{"NewImage":{"Weather":{"S":[{"anything-but":"Sunny"}]}}}}"#, false),
    ("anything-but needs a value", r#"{"dynamodb":{"NewImage":{"Missing":{"S":[{"anything-but":"Sunny"}]}}}}"#, false),
    ("anything-but numbers", r#"{"dynamodb":{"NewImage":{"Price":{"N":[{"anything-but":[1,2]}]}}}}"#, true),
    ("anything-but numbers: refused", r#"{"dynamodb":{"NewImage":{"Price":{"N":[{"anything-but":[100.0,200]}]}}}}"#, false),
    ("anything-but prefix: refused", r#"{"dynamodb":{"NewImage":{"Region":{"S":[{"anything-but":{"prefix":"us-"}}]}}}}"#, false),
    ("anything-but prefix", r#"{"dynamodb":{"NewImage":{"Region":{"S":[{"anything-but":{"prefix":"eu-"}}]}}}}"#, true),
    ("anything-but suffix", r#"{"dynamodb":{"NewImage":{"FileName":{"S":[{"anything-but":{"suffix":".png"}}]}}}}"#, true),
    ("anything-but ignore case: refused", r#"{"dynamodb":{"NewImage":{"FileName":{"S":[{"anything-but":{"equals-ignore-case":["a","PHOTO.png"]}}]}}}}"#, false),
    ("prefix", r#"{"dynamodb":{"NewImage":{"Region":{"S":[{"prefix":"us-"}]}}}}"#, true),
    ("prefix: other", r#"{"dynamodb":{"NewImage":{"Region":{"S":[{"prefix":"eu-"}]}}}}"#, false),
    ("prefix ignoring case", r#"{"dynamodb":{"NewImage":{"Region":{"S":[{"prefix":{"equals-ignore-case":"US-"}}]}}}}"#, true),
    ("suffix", r#"{"dynamodb":{"NewImage":{"FileName":{"S":[{"suffix":".PNG"}]}}}}"#, true),
    ("suffix: case matters", r#"{"dynamodb":{"NewImage":{"FileName":{"S":[{"suffix":".png"}]}}}}"#, false),
    ("suffix ignoring case", r#"{"dynamodb":{"NewImage":{"FileName":{"S":[{"suffix":{"equals-ignore-case":".png"}}]}}}}"#, true),
    ("numeric equals", r#"{"dynamodb":{"NewImage":{"Price":{"N":[{"numeric":["=",100]}]}}}}"#, true),
    ("numeric equals: exponent form", r#"{"dynamodb":{"NewImage":{"Price":{"N":[{"numeric":["=",1E2]}]}}}}"#, true),
    ("numeric equals: other", r#"{"dynamodb":{"NewImage":{"Price":{"N":[{"numeric":["=",100.5]}]}}}}"#, false),
    ("numeric range", r#"{"dynamodb":{"NewImage":{"Price":{"N":[{"numeric":[">",10,"<=",100]}]}}}}"#, true),
    ("numeric range: above", r#"{"dynamodb":{"NewImage":{"Price":{"N":[{"numeric":[">",10,"<=",20]}]}}}}"#, false),
    ("numeric: exclusive bound", r#"{"dynamodb":{"NewImage":{"Price":{"N":[{"numeric":[">",100]}]}}}}"#, false),
    ("numeric: strings are not numbers", r#"{"dynamodb":{"NewImage":{"Name":{"S":[{"numeric":[">",0]}]}}}}"#, false),
    ("number value matches by value", r#"{"dynamodb":{"NewImage":{"Price":{"N":[100.0]}}}}"#, true),
    ("string value matches the text", r#"{"dynamodb":{"NewImage":{"Price":{"N":["100"]}}}}"#, true),
    ("string value: other text", r#"{"dynamodb":{"NewImage":{"Price":{"N":["100.0"]}}}}"#, false),
    ("exists", r#"{"dynamodb":{"NewImage":{"ProductName":{"S":[{"exists":true}]}}}}"#, true),
    ("exists: absent", r#"{"dynamodb":{"NewImage":{"Missing":{"S":[{"exists":true}]}}}}"#, false),
    ("does not exist", r#"{"dynamodb":{"NewImage":{"Missing":{"S":[{"exists":false}]}}}}"#, true),
    ("does not exist: present", r#"{"dynamodb":{"NewImage":{"ProductName":{"S":[{"exists":false}]}}}}"#, false),
    ("does not exist: other type", r#"{"dynamodb":{"NewImage":{"ProductName":{"N":[{"exists":false}]}}}}"#, true),
    ("no old image on an insert", r#"{"dynamodb":{"OldImage":{"pk":{"S":[{"exists":false}]}}}}"#, true),
    ("a nested object on a missing image", r#"{"dynamodb":{"OldImage":{"pk":{"S":[{"prefix":""}]}}}}"#, false),
    ("string set: any element", r#"{"dynamodb":{"NewImage":{"tags":{"SS":["blue"]}}}}"#, true),
    ("string set: none", r#"{"dynamodb":{"NewImage":{"tags":{"SS":["green"]}}}}"#, false),
    ("number set: numeric", r#"{"dynamodb":{"NewImage":{"sizes":{"NS":[{"numeric":[">",10]}]}}}}"#, true),
    ("number set: by value", r#"{"dynamodb":{"NewImage":{"sizes":{"NS":[10.50]}}}}"#, true),
    ("number set: none", r#"{"dynamodb":{"NewImage":{"sizes":{"NS":[{"numeric":[">",11]}]}}}}"#, false),
    ("map", r#"{"dynamodb":{"NewImage":{"address":{"M":{"city":{"S":["Paris"]},"zip":{"N":[{"numeric":[">=",75000,"<",76000]}]}}}}}}"#, true),
    ("map: wrong type below", r#"{"dynamodb":{"NewImage":{"address":{"M":{"zip":{"S":["75001"]}}}}}}"#, false),
    ("list: one element matches", r#"{"dynamodb":{"NewImage":{"lines":{"L":{"M":{"sku":{"S":["b"]},"qty":{"N":[{"numeric":[">",3]}]}}}}}}}"#, true),
    ("list: conditions from different elements", r#"{"dynamodb":{"NewImage":{"lines":{"L":{"M":{"sku":{"S":["a"]},"qty":{"N":[{"numeric":[">",3]}]}}}}}}}"#, false),
    ("boolean", r#"{"dynamodb":{"NewImage":{"flag":{"BOOL":[true]}}}}"#, true),
    ("boolean: other", r#"{"dynamodb":{"NewImage":{"flag":{"BOOL":[false]}}}}"#, false),
    ("boolean: a string is not a boolean", r#"{"dynamodb":{"NewImage":{"flag":{"BOOL":["true"]}}}}"#, false),
    ("binary as base64", r#"{"dynamodb":{"NewImage":{"bin":{"B":["AP8="]}}}}"#, true),
    ("event name", r#"{"eventName":["INSERT"]}"#, true),
    ("event name: other", r#"{"eventName":["MODIFY","REMOVE"]}"#, false),
    ("an attribute is not a value", r#"{"dynamodb":{"NewImage":{"Name":["Alice"]}}}"#, false),
];

/// A 38-digit number and its neighbour: both round to the same `f64`.
#[rustfmt::skip]
const BIG: &[(&str, &str, bool)] = &[
    ("38 digits: above the neighbour", r#"{"dynamodb":{"NewImage":{"big":{"N":[{"numeric":[">",12345678901234567890123456789012345677]}]}}}}"#, true),
    ("38 digits: not equal to the neighbour", r#"{"dynamodb":{"NewImage":{"big":{"N":[{"numeric":["=",12345678901234567890123456789012345677]}]}}}}"#, false),
    ("38 digits: equal to itself", r#"{"dynamodb":{"NewImage":{"big":{"N":[{"numeric":["=",12345678901234567890123456789012345678]}]}}}}"#, true),
    ("38 digits: not above itself", r#"{"dynamodb":{"NewImage":{"big":{"N":[{"numeric":[">",12345678901234567890123456789012345678]}]}}}}"#, false),
    ("38 digits: exact value", r#"{"dynamodb":{"NewImage":{"big":{"N":[12345678901234567890123456789012345678]}}}}"#, true),
    ("38 digits: exact value of the neighbour", r#"{"dynamodb":{"NewImage":{"big":{"N":[12345678901234567890123456789012345679]}}}}"#, false),
    ("38 digits: inside a tight range", r#"{"dynamodb":{"NewImage":{"big":{"N":[{"numeric":[">",12345678901234567890123456789012345677.9,"<",12345678901234567890123456789012345678.1]}]}}}}"#, true),
];

fn cases(table: &[(&'static str, &'static str, bool)]) -> Vec<Case> {
    table
        .iter()
        .map(|&(note, pattern, matches)| Case {
            note,
            pattern,
            record: record("INSERT", ITEM),
            matches,
        })
        .collect()
}

#[test]
fn eventbridge_comparison_operators() {
    assert_eq!(run(&cases(CASES)), 66);
}

#[test]
fn a_38_digit_number_is_compared_exactly() {
    let same_float: f64 = "12345678901234567890123456789012345677".parse().unwrap();
    assert_eq!(
        same_float,
        "12345678901234567890123456789012345678"
            .parse::<f64>()
            .unwrap()
    );
    assert_eq!(run(&cases(BIG)), 7);
}
