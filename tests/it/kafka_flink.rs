//! A real Debezium consumer reads the Kafka sink's `debezium` envelope:
//! Apache Flink's `debezium-json` format (PyFlink, run by
//! tests/flink_debezium.py) materialises the topic's changes of a mixed
//! workload over DynamoDB Local (puts, updates, deletes, re-inserts; every
//! DynamoDB type), and the table it ends with equals a Scan of the
//! DynamoDB table, every attribute read with the Flink SQL type that
//! Kafka sink page of the book (docs/src/sinks/kafka.md) gives for it.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::process::Command;

use common::engine::{run_until_caught_up, write_config};
use common::kafka;
use common::values::{to_sdk, to_sdk_item};
use dynamo_cdc::model::{plain_item, AttributeValue as V, Item, Number};
use dynamo_cdc::sink::elasticsearch::{restyle_numbers, NumberStyle};
use serde_json::{json, Value};

/// A python with PyFlink (runs tests/flink_debezium.py), exported by scripts/test.sh.
fn pyflink_python() -> String {
    std::env::var("DYNAMO_CDC_TEST_PYFLINK_PYTHON").unwrap_or_else(|_| {
        panic!(
            "DYNAMO_CDC_TEST_PYFLINK_PYTHON is not set: run the tests with scripts/test.sh, \
             which installs PyFlink (apache-flink) into its own venv"
        )
    })
}

/// The Flink SQL type a column (or a nested field) is declared with, and
/// how a DynamoDB attribute maps to it.
enum Ty {
    /// `STRING`: a string (S).
    Str,
    /// `DECIMAL(p, s)`: numbers (N) that fit it, exactly.
    Decimal(u8, u8),
    /// `STRING` holding a number (N) of any size and scale: the exact value
    /// as Java's `BigDecimal` prints it (`10.5`, `1E-130`).
    NumberText,
    /// `BYTES`: binary (B), which the envelope writes as base64.
    Bytes,
    /// `BOOLEAN` (BOOL).
    Boolean,
    /// `ARRAY<…>`: a list (L) of one type or, when `set`, a set (SS, NS, BS;
    /// compared without order).
    Array { of: Box<Ty>, set: bool },
    /// `ROW<…>`: a map (M) whose attribute names are known.
    Row(Vec<(&'static str, Ty)>),
    /// `MAP<STRING, STRING>`: a map (M) of strings under any names.
    Map,
    /// `STRING` holding the JSON text of a list or map of mixed types.
    JsonText,
}

impl Ty {
    fn array(of: Ty) -> Self {
        Self::Array {
            of: Box::new(of),
            set: false,
        }
    }

    fn set(of: Ty) -> Self {
        Self::Array {
            of: Box::new(of),
            set: true,
        }
    }

    fn flink(&self) -> String {
        match self {
            Self::Str | Self::NumberText | Self::JsonText => "STRING".into(),
            Self::Decimal(p, s) => format!("DECIMAL({p}, {s})"),
            Self::Bytes => "BYTES".into(),
            Self::Boolean => "BOOLEAN".into(),
            Self::Array { of, .. } => format!("ARRAY<{}>", of.flink()),
            Self::Row(fields) => format!(
                "ROW<{}>",
                fields
                    .iter()
                    .map(|(name, ty)| format!("`{name}` {}", ty.flink()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Map => "MAP<STRING, STRING>".into(),
        }
    }
}

/// The columns of the Flink table: the key, the attributes that
/// common::workload writes, and `note` of the hand-written items.
fn columns() -> Vec<(&'static str, Ty)> {
    vec![
        ("pk", Ty::Str),
        // Sort keys range from 38-digit integers to 1E-130: no DECIMAL holds them all.
        ("sk", Ty::NumberText),
        ("s", Ty::Str),
        ("big", Ty::Decimal(38, 0)),
        ("dec", Ty::Decimal(8, 3)),
        ("tiny", Ty::Decimal(38, 38)),
        ("bin", Ty::Bytes),
        ("flag", Ty::Boolean),
        // Always DynamoDB's NULL: SQL NULL in any type.
        ("nothing", Ty::Str),
        ("tags", Ty::set(Ty::Str)),
        ("nums", Ty::set(Ty::Decimal(4, 0))),
        ("blobs", Ty::set(Ty::Bytes)),
        // [{}, [], "…", 38 digits, {"inner": {}}]: mixed types.
        ("list", Ty::JsonText),
        (
            "doc",
            Ty::Row(vec![
                ("empty", Ty::Map),
                ("list", Ty::array(Ty::Str)),
                ("deep", Ty::Row(vec![("n", Ty::Decimal(20, 0))])),
                ("blank", Ty::Str),
                ("nul", Ty::Str),
            ]),
        ),
        ("note", Ty::Str),
    ]
}

/// `text` (a DynamoDB number, or a number as Flink or Python prints it:
/// `10.50`, `1E-38`, `-1.2E+5`) as plain decimal text without exponent,
/// leading or trailing zeros: equal values, equal text.
fn canonical_number(text: &str) -> String {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (
            &rest[..at],
            rest[at + 1..]
                .trim_start_matches('+')
                .parse::<i64>()
                .unwrap_or_else(|e| panic!("exponent of {text:?}: {e}")),
        ),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    assert!(
        !(int.is_empty() && frac.is_empty())
            && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()),
        "{text:?} is not a number"
    );
    let digits = format!("{int}{frac}");
    let significant = digits.trim_start_matches('0');
    // Where the decimal point falls in `significant`.
    let point = int.len() as i64 + exponent - (digits.len() - significant.len()) as i64;
    let significant = significant.trim_end_matches('0');
    if significant.is_empty() {
        return "0".into();
    }
    let len = significant.len() as i64;
    let body = if point <= 0 {
        format!("0.{}{significant}", "0".repeat((-point) as usize))
    } else if point >= len {
        format!("{significant}{}", "0".repeat((point - len) as usize))
    } else {
        let (whole, fraction) = significant.split_at(point as usize);
        format!("{whole}.{fraction}")
    };
    if negative {
        format!("-{body}")
    } else {
        body
    }
}

/// JSON text (plain JSON as the envelope writes it, or as Flink re-prints
/// it) as a value with every number as its digits in a string.
fn json_text_value(text: &str) -> Value {
    serde_json::from_str(&restyle_numbers(text.to_owned(), NumberStyle::String))
        .unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"))
}

fn sorted_if(set: bool, mut values: Vec<Value>) -> Value {
    if set {
        values.sort_by_key(Value::to_string);
    }
    Value::Array(values)
}

/// A value as tests/flink_debezium.py printed it, made comparable: numbers
/// canonical, sets sorted, JSON text parsed.
fn from_flink(ty: &Ty, value: &Value) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    let text = || {
        value
            .as_str()
            .unwrap_or_else(|| panic!("Flink printed {value} where text belongs"))
    };
    match ty {
        Ty::Str | Ty::Bytes | Ty::Boolean | Ty::Map => value.clone(),
        Ty::Decimal(..) | Ty::NumberText => Value::from(canonical_number(text())),
        Ty::JsonText => json_text_value(text()),
        Ty::Array { of, set } => sorted_if(
            *set,
            value
                .as_array()
                .unwrap_or_else(|| panic!("Flink printed {value} for an ARRAY"))
                .iter()
                .map(|v| from_flink(of, v))
                .collect(),
        ),
        Ty::Row(fields) => {
            let values = value
                .as_array()
                .unwrap_or_else(|| panic!("Flink printed {value} for a ROW"));
            assert_eq!(values.len(), fields.len(), "fields of {value}");
            Value::Array(
                fields
                    .iter()
                    .zip(values)
                    .map(|((_, ty), v)| from_flink(ty, v))
                    .collect(),
            )
        }
    }
}

/// A DynamoDB attribute (`None`: absent) as [`from_flink`] makes the
/// column of type `ty` that Flink read it into: absent and NULL are SQL
/// NULL, a ROW lists its fields in declared order.
fn from_dynamo(ty: &Ty, value: Option<&V>) -> Value {
    let Some(value) = value else {
        return Value::Null;
    };
    let base64 = |bytes: &[u8]| {
        use base64::Engine as _;
        Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
    };
    match (ty, value) {
        (_, V::Null) => Value::Null,
        (Ty::Str, V::S(s)) => Value::from(s.as_str()),
        (Ty::Decimal(..) | Ty::NumberText, V::N(n)) => Value::from(canonical_number(n.as_str())),
        (Ty::Bytes, V::B(b)) => base64(b),
        (Ty::Boolean, V::Bool(b)) => Value::from(*b),
        (Ty::JsonText, V::L(_) | V::M(_)) => {
            let item = Item::from([("v".to_owned(), value.clone())]);
            json_text_value(&plain_item(&item))["v"].take()
        }
        (Ty::Array { of, set }, V::L(list)) => sorted_if(
            *set,
            list.iter().map(|v| from_dynamo(of, Some(v))).collect(),
        ),
        (Ty::Array { of, set: true }, V::Ss(members)) => sorted_if(
            true,
            members
                .iter()
                .map(|s| from_dynamo(of, Some(&V::S(s.clone()))))
                .collect(),
        ),
        (Ty::Array { of, set: true }, V::Ns(members)) => sorted_if(
            true,
            members
                .iter()
                .map(|n| from_dynamo(of, Some(&V::N(n.clone()))))
                .collect(),
        ),
        (Ty::Array { set: true, .. }, V::Bs(members)) => {
            sorted_if(true, members.iter().map(|b| base64(b)).collect())
        }
        (Ty::Row(fields), V::M(map)) => Value::Array(
            fields
                .iter()
                .map(|(name, ty)| from_dynamo(ty, map.get(*name)))
                .collect(),
        ),
        (Ty::Map, V::M(map)) => Value::Object(
            map.iter()
                .map(|(name, v)| match v {
                    V::S(s) => (name.clone(), Value::from(s.as_str())),
                    other => panic!("MAP<STRING, STRING> column holds {other:?}"),
                })
                .collect(),
        ),
        (ty, other) => panic!(
            "a {} attribute in a {} column",
            other.type_tag(),
            ty.flink()
        ),
    }
}

/// Rows by key (pk and canonical sk), for comparing and naming differences.
fn by_key(rows: impl IntoIterator<Item = Value>) -> BTreeMap<(String, String), Value> {
    rows.into_iter()
        .map(|row| {
            let key = (
                row[0].as_str().expect("pk").to_owned(),
                row[1].as_str().expect("sk").to_owned(),
            );
            (key, row)
        })
        .collect()
}

fn n(text: &str) -> V {
    V::N(Number::parse(text).expect("a number"))
}

/// A sort key of 1E-130, DynamoDB's smallest magnitude, in plain notation.
fn smallest() -> String {
    format!("0.{}1", "0".repeat(129))
}

/// A sort key of -9.9999999999999999999999999999999999999E+125, DynamoDB's
/// largest magnitude, in plain notation.
fn largest() -> String {
    format!("-{}{}", "9".repeat(38), "0".repeat(88))
}

/// A 38-digit fraction: a sort key of the item that the test updates.
const FRACTION: &str = "0.12345678901234567890123456789012345678";

/// Items the random workload never writes: sort keys at DynamoDB's number
/// limits and a 38-digit fraction, strings with escapes, a list holding a
/// NULL. Every key is written in the plain notation that DynamoDB Local
/// keeps in stream images: it copies an UpdateItem's key into the stream
/// record's `Keys` as the request wrote it, and the Kafka record key is
/// made from `Keys`, so an update addressed as `1E-130` would give the
/// item a second Kafka key (and maybe partition) beside its INSERT's.
fn edge_items() -> Vec<Item> {
    let item = |sk: &str, note: &str| {
        Item::from([
            ("pk".to_owned(), V::S("edge".into())),
            ("sk".to_owned(), n(sk)),
            ("note".to_owned(), V::S(note.into())),
        ])
    };
    let mut fraction = item(FRACTION, "tab\there, \"quoted\", back\\slash, ünï 日本");
    fraction.extend([
        (
            "big".to_owned(),
            n("-99999999999999999999999999999999999999"),
        ),
        ("dec".to_owned(), n("-99999.999")),
        (
            "tiny".to_owned(),
            n("0.00000000000000000000000000000000000001"),
        ),
        ("bin".to_owned(), V::B(Vec::new())),
        ("flag".to_owned(), V::Bool(false)),
        ("nothing".to_owned(), V::Null),
        (
            "nums".to_owned(),
            V::Ns(
                ["-1000", "0", "9999"]
                    .map(|t| Number::parse(t).expect("a number"))
                    .to_vec(),
            ),
        ),
        ("blobs".to_owned(), V::Bs(vec![vec![0], vec![255, 254]])),
        (
            "doc".to_owned(),
            V::M(Item::from([
                (
                    "deep".to_owned(),
                    V::M(Item::from([("n".to_owned(), n("12345678901234567890"))])),
                ),
                ("list".to_owned(), V::L(vec![V::S("a".into()), V::Null])),
            ])),
        ),
    ]);
    vec![
        fraction,
        item(&smallest(), "smallest magnitude"),
        item(&largest(), "largest magnitude"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn flink_debezium_json_materialises_the_table_from_the_envelope() {
    let client = common::client().await;
    let table = common::unique_table("flink");
    common::create_table(&client, &table).await;
    let counts = common::workload::run(&client, &table, 40, 300, 2024, 4).await;
    assert!(counts.updates > 0 && counts.deletes > 0 && counts.reinserts > 0);
    for item in edge_items() {
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(to_sdk_item(&item)))
            .send()
            .await
            .expect("put");
    }
    // An update and a delete of edge items, besides the workload's.
    let key = |sk: &str| {
        HashMap::from([
            ("pk".to_owned(), to_sdk(&V::S("edge".into()))),
            ("sk".to_owned(), to_sdk(&n(sk))),
        ])
    };
    client
        .update_item()
        .table_name(&table)
        .set_key(Some(key(FRACTION)))
        .update_expression("SET flag = :t, tags = :tags REMOVE #dec")
        .expression_attribute_names("#dec", "dec")
        .expression_attribute_values(":t", to_sdk(&V::Bool(true)))
        .expression_attribute_values(":tags", to_sdk(&V::Ss(vec!["b".into(), "a".into()])))
        .send()
        .await
        .expect("update");
    client
        .delete_item()
        .table_name(&table)
        .set_key(Some(key(&largest())))
        .send()
        .await
        .expect("delete");

    let dir = tempfile::tempdir().expect("temp dir");
    let topic = format!("{}.{{table}}", kafka::unique_topic_prefix("flink"));
    let sink = format!(
        "[[sinks]]\ntype = \"kafka\"\nbrokers = \"{}\"\ntopic = \"{topic}\"\ncreate_topics = true\n\
         partitions = 3\nenvelope = \"debezium\"\n",
        kafka::brokers()
    );
    let config = write_config(dir.path(), &[&table], "", &sink);
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");

    // Every change in (partition, offset) order: each key's changes in order.
    let records = kafka::read_topic(&topic.replace("{table}", &table), "read_committed");
    let values: Vec<String> = records.into_iter().filter_map(|r| r.value).collect();
    let mut ops: BTreeMap<String, usize> = BTreeMap::new();
    for value in &values {
        let event: Value = serde_json::from_str(value).expect("a JSON envelope");
        *ops.entry(event["op"].as_str().expect("op").to_owned())
            .or_default() += 1;
    }
    let changes = dir.path().join("changes.jsonl");
    std::fs::write(&changes, values.join("\n") + "\n").expect("write the changes");

    let columns = columns();
    let spec = json!({
        "columns": columns.iter().map(|(name, ty)| json!([name, ty.flink()])).collect::<Vec<_>>(),
        "key": ["pk", "sk"],
    });
    let script = format!("{}/tests/flink_debezium.py", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(pyflink_python())
        .arg(&script)
        .arg(&changes)
        .arg(spec.to_string())
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        output.status.success(),
        "{script} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });

    // Flink read every change: c → +I, u → -U and +U, d → -D.
    let op = |name: &str| Value::from(ops.get(name).copied().unwrap_or(0));
    assert_eq!(
        result["changes"],
        json!({"+I": op("c"), "-U": op("u"), "+U": op("u"), "-D": op("d")}),
        "Flink's changelog against the topic's ops {ops:?}"
    );
    assert!(
        ops.len() == 3,
        "the topic holds creates, updates and deletes: {ops:?}"
    );

    let items = common::scan(&client, &table).await;
    let expected = by_key(items.values().map(|item| {
        Value::Array(
            columns
                .iter()
                .map(|(name, ty)| from_dynamo(ty, item.get(*name)))
                .collect(),
        )
    }));
    let actual = by_key(result["rows"].as_array().expect("rows").iter().map(|row| {
        let row = row.as_array().expect("a row");
        assert_eq!(row.len(), columns.len(), "columns of {row:?}");
        Value::Array(
            columns
                .iter()
                .zip(row)
                .map(|((_, ty), v)| from_flink(ty, v))
                .collect(),
        )
    }));
    let mut problems = Vec::new();
    for (key, row) in &expected {
        match actual.get(key) {
            None => problems.push(format!("{key:?} is missing from Flink's table")),
            Some(other) if other != row => problems.push(format!(
                "{key:?} differs:\n  table: {row}\n  flink: {other}"
            )),
            Some(_) => {}
        }
    }
    for key in actual.keys().filter(|k| !expected.contains_key(*k)) {
        problems.push(format!("{key:?} is in Flink's table but not in DynamoDB"));
    }
    assert!(
        problems.is_empty(),
        "Flink {} materialised {} rows, the table has {} items; first differences:\n{}",
        result["flink"],
        actual.len(),
        expected.len(),
        problems[..problems.len().min(5)].join("\n")
    );
    // Flink's own aggregate over the changelog agrees.
    assert_eq!(result["count"], Value::from(items.len()), "COUNT(*)");
}

#[test]
fn numbers_become_canonical_text() {
    for (text, canonical) in [
        ("10.50", "10.5"),
        ("1E-38", "0.00000000000000000000000000000000000001"),
        ("-1.2E+5", "-120000"),
        ("0.000", "0"),
        ("007", "7"),
        ("-0.5", "-0.5"),
        (
            "12345678901234567890123456789012345678",
            "12345678901234567890123456789012345678",
        ),
        ("1.5e2", "150"),
        ("-99999.999", "-99999.999"),
    ] {
        assert_eq!(canonical_number(text), canonical, "{text}");
    }
}
