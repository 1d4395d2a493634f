//! Real-world DynamoDB Streams fixtures (`shared/fixtures/dynamodb-streams-real`
//! beside the clone) replayed with `replay`'s own input reading and
//! decoding into a `jsonl` sink: every record, DynamoDB Streams or
//! Kinesis-format, either becomes the change its file says (op, position,
//! keys, attribute types, TTL; images attribute for attribute) or is
//! dead-lettered with a reason naming the file and record. Container files
//! (Markdown, reStructuredText, localstack snapshots) have their records
//! extracted first; the fixtures themselves are never copied into the
//! repository.

#[path = "../real_fixtures/expected.rs"]
mod expected;

use std::path::{Path, PathBuf};

use dynamo_cdc::app::{run_replay, ReplayOptions};
use serde_json::Value;

/// What one fixture file holds (see `real_fixtures/expected.rs`).
pub struct Expect {
    /// The fixture's file name.
    pub file: &'static str,
    /// The table replayed (Kinesis-format records name theirs).
    pub table: &'static str,
    /// Each decoded change, rendered by [`render`], in order.
    pub events: &'static [&'static str],
    /// The start of each dead letter's reason (after the directory), in order.
    pub rejected: &'static [&'static str],
    /// What the replay's error must contain when nothing in it decodes.
    pub error: Option<&'static str>,
}

/// The fixture directory; fails the test when it is missing.
fn fixtures() -> PathBuf {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/dynamodb-streams-real");
    assert!(
        dir.is_dir(),
        "the real DynamoDB Streams fixtures are missing: expected the directory {} \
         (shared/ beside the clone)",
        dir.display()
    );
    dir
}

#[test]
fn every_fixture_file_has_expectations() {
    let mut files: Vec<String> = std::fs::read_dir(fixtures())
        .expect("read the fixture directory")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != "SOURCES.md")
        .collect();
    files.sort();
    let expected: Vec<&str> = expected::EXPECTED.iter().map(|e| e.file).collect();
    assert_eq!(files, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_decodes_as_its_file_says_or_is_rejected_by_name() {
    let dir = fixtures();
    let mut failures = Vec::new();
    for expect in expected::EXPECTED {
        let work = tempfile::tempdir().expect("temp dir");
        let inputs = inputs(&dir.join(expect.file), work.path());
        let sources = change_records(&inputs);
        let outcome = replay(inputs, expect.table, work.path()).await;
        failures.extend(compare(expect, &outcome));
        if expect.rejected.is_empty() && expect.error.is_none() {
            failures.extend(compare_items(expect.file, &sources, &outcome.lines));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// The keys and images of each change against those of its source record,
/// attribute for attribute (every type, every digit).
fn compare_items(file: &str, sources: &[Value], lines: &[Value]) -> Vec<String> {
    if sources.len() != lines.len() {
        return vec![format!(
            "{file}: {} stream records in, {} changes out",
            sources.len(),
            lines.len()
        )];
    }
    let mut failures = Vec::new();
    for (index, (source, line)) in sources.iter().zip(lines).enumerate() {
        let stream = &source["dynamodb"];
        for (theirs, ours) in [
            ("Keys", "keys"),
            ("NewImage", "new_image"),
            ("OldImage", "old_image"),
        ] {
            if stream[theirs] != line[ours] {
                failures.push(format!(
                    "{file}: record {}: {theirs} {} decoded as {}",
                    index + 1,
                    stream[theirs],
                    line[ours]
                ));
            }
        }
    }
    failures
}

/// The change records the input files hold, read as plain JSON (a file is
/// one document, a `Records` page or event or one record, or one record per
/// line), a Lambda Kinesis event record's base64 `data` decoded.
fn change_records(inputs: &[PathBuf]) -> Vec<Value> {
    let mut records = Vec::new();
    for input in inputs {
        let text = std::fs::read_to_string(input).expect("read input");
        let text = text.trim_start_matches('\u{feff}');
        let documents: Vec<Value> = match serde_json::from_str(text) {
            Ok(document) => vec![document],
            Err(_) => text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
        };
        for document in documents {
            match document.get("Records").and_then(Value::as_array) {
                Some(list) => records.extend(list.iter().map(unwrap_kinesis)),
                None => records.push(unwrap_kinesis(&document)),
            }
        }
    }
    records.retain(|r| r["dynamodb"].is_object());
    records
}

/// The record inside a Lambda Kinesis event record; any other as it is.
fn unwrap_kinesis(record: &Value) -> Value {
    use base64::Engine as _;
    let Some(data) = record["kinesis"]["data"].as_str() else {
        return record.clone();
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64 data");
    serde_json::from_slice(&bytes).expect("a JSON record")
}

/// ApproximateCreationDateTime in each of its forms, to milliseconds: integer
/// and float seconds, E-notation with more digits than a double holds, absent;
/// Kinesis-format milliseconds and microseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creation_times_are_read_in_every_form() {
    let cases: [(&str, &str, &[Option<i64>]); 5] = [
        (
            "aws_aws-lambda-java-libs__aws-lambda-java-tests_src_test_resources_ddb_dynamo_event.json",
            "fixture",
            &[Some(1_428_537_600_000), Some(1_635_734_407_123), Some(1_428_537_600_000)],
        ),
        (
            "aws_aws-lambda-java-libs__aws-lambda-java-tests_src_test_resources_ddb_dynamo_event_roundtrip.json",
            "fixture",
            &[Some(1_428_537_600_000), Some(1_635_734_407_123), Some(1_428_537_600_000)],
        ),
        (
            "aws-powertools_powertools-lambda-python__tests_events_dynamoStreamEvent.json",
            "fixture",
            &[Some(1_693_997_155_000), None],
        ),
        (
            "aws-powertools_powertools-lambda-typescript__packages_parser_tests_events_kinesis_dynamodb-stream.json",
            "PowertoolsEventsStack-DynamoDBTable59784FC0-8NKAMTERTAXY",
            &[Some(1_731_924_555_370), Some(1_731_924_555_370)],
        ),
        (
            "daq-tools_lorrystream__doc_carabas_kcl_dynamodb.md",
            "table-testdrive",
            &[Some(1_720_740_233_013), Some(1_720_742_302_234), Some(1_720_742_321_848)],
        ),
    ];
    let dir = fixtures();
    for (file, table, expected) in cases {
        let work = tempfile::tempdir().expect("temp dir");
        let outcome = replay(inputs(&dir.join(file), work.path()), table, work.path()).await;
        let times: Vec<Option<i64>> = outcome
            .lines
            .iter()
            .map(|line| line["approx_time_ms"].as_i64())
            .collect();
        assert_eq!(times, expected, "{file}");
    }
}

/// What a replay produced.
struct Outcome {
    /// The `jsonl` sink's lines.
    lines: Vec<Value>,
    /// The same, rendered by [`render`].
    events: Vec<String>,
    reasons: Vec<String>,
    error: Option<String>,
}

/// The differences between what a fixture should give and what it gave.
fn compare(expect: &Expect, outcome: &Outcome) -> Vec<String> {
    let mut failures = Vec::new();
    let events: Vec<&str> = outcome.events.iter().map(String::as_str).collect();
    if events != expect.events {
        failures.push(format!(
            "{}: changes\n  expected {:#?}\n  got {events:#?}",
            expect.file, expect.events
        ));
    }
    let rejected_alike = outcome.reasons.len() == expect.rejected.len()
        && outcome
            .reasons
            .iter()
            .zip(expect.rejected)
            .all(|(reason, start)| reason.contains(&format!("/{start}")));
    if !rejected_alike {
        failures.push(format!(
            "{}: rejections\n  expected {:#?}\n  got {:#?}",
            expect.file, expect.rejected, outcome.reasons
        ));
    }
    let error_alike = match (expect.error, &outcome.error) {
        (Some(start), Some(error)) => error.contains(&format!("/{start}")),
        (None, None) => true,
        _ => false,
    };
    if !error_alike {
        failures.push(format!(
            "{}: replay error\n  expected {:?}\n  got {:?}",
            expect.file, expect.error, outcome.error
        ));
    }
    failures
}

/// Replays `inputs` as `table` into a `jsonl` sink under `work`, with
/// inferred keys.
async fn replay(inputs: Vec<PathBuf>, table: &str, work: &Path) -> Outcome {
    let text = format!(
        "state_dir = \"{state}\"\n\n[aws]\nregion = \"us-east-1\"\n\n[[tables]]\nname = \"{table}\"\n\n\
         [[sinks]]\ntype = \"jsonl\"\ndir = \"{out}\"\n",
        state = work.join("state").display(),
        out = work.join("out").display(),
    );
    let config =
        dynamo_cdc::config::parse_str(&text, Path::new("pipeline.toml"), |_| None).expect("config");
    let options = ReplayOptions {
        table: table.to_owned(),
        keys: Vec::new(),
        files: inputs,
    };
    let error = run_replay(&config, options)
        .await
        .err()
        .map(|e| e.to_string());
    let lines = json_lines(&work.join("out").join(table));
    Outcome {
        events: lines.iter().map(render).collect(),
        lines,
        reasons: json_lines(&work.join("state/dead-letters"))
            .iter()
            .map(|letter| letter["error"].as_str().unwrap_or_default().to_owned())
            .collect(),
        error,
    }
}

/// Every line of the `.jsonl` files of `dir` (in name order) as JSON.
fn json_lines(dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.expect("entry").path()).collect();
    files.sort();
    files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).expect("read output");
            text.lines()
                .map(|line| serde_json::from_str(line).expect("a JSON line"))
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// A change event line as `OP SEQUENCE key=TYPE:value… new[name:TYPE,…] old[…] ttl`.
fn render(event: &Value) -> String {
    let op = event["op"].as_str().unwrap_or("?").to_uppercase();
    let sequence = event["position"]["sequence"].as_str().unwrap_or("?");
    let mut text = format!("{op} {sequence}");
    for (name, value) in event["keys"].as_object().into_iter().flatten() {
        let (tag, scalar) = tagged(value);
        text.push_str(&format!(" {name}={tag}:{}", scalar.as_str().unwrap_or("?")));
    }
    for (field, label) in [("new_image", "new"), ("old_image", "old")] {
        if let Some(image) = event[field].as_object() {
            let mut names: Vec<(&String, &str)> = image
                .iter()
                .map(|(name, value)| (name, tagged(value).0))
                .collect();
            names.sort();
            let names: Vec<String> = names.iter().map(|(n, tag)| format!("{n}:{tag}")).collect();
            text.push_str(&format!(" {label}[{}]", names.join(",")));
        }
    }
    if event["ttl_delete"].as_bool() == Some(true) {
        text.push_str(" ttl");
    }
    text
}

/// The type tag and content of a DynamoDB JSON value.
fn tagged(value: &Value) -> (&str, &Value) {
    value
        .as_object()
        .and_then(|map| map.iter().next())
        .map_or(("?", &Value::Null), |(tag, content)| {
            (tag.as_str(), content)
        })
}

/// The replay inputs for one fixture: the file itself, or the records
/// extracted from a container file into `work`.
fn inputs(fixture: &Path, work: &Path) -> Vec<PathBuf> {
    let name = fixture
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let text = || std::fs::read_to_string(fixture).expect("read fixture");
    let write = |suffix: &str, content: &str| {
        let path = work.join(format!("{name}{suffix}"));
        std::fs::write(&path, content).expect("write extracted records");
        path
    };
    if name.ends_with("README.md") {
        json_blocks(&text())
            .iter()
            .enumerate()
            .map(|(i, block)| write(&format!(".block-{:02}.json", i + 1), block))
            .collect()
    } else if name.ends_with(".md") {
        vec![write(".records.jsonl", &log_records(&text()))]
    } else if name.ends_with(".rst") {
        vec![write(".output.json", &literal_output(&text()))]
    } else if name.ends_with(".snapshot.json") {
        vec![write(".records.jsonl", &snapshot_records(&text()))]
    } else {
        vec![fixture.to_owned()]
    }
}

/// The contents of the fenced ```` ```json ```` blocks of a Markdown text.
fn json_blocks(markdown: &str) -> Vec<String> {
    markdown
        .split("```json\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default().to_owned())
        .collect()
}

/// The JSON that ends each `process_record - {…}` log line, one per line.
fn log_records(markdown: &str) -> String {
    markdown
        .lines()
        .filter_map(|line| line.split_once("process_record - "))
        .map(|(_, json)| format!("{json}\n"))
        .collect()
}

/// The literal block after `Output::` of a reStructuredText text, dedented.
fn literal_output(rst: &str) -> String {
    let text = rst.replace('\r', "");
    let after = text
        .split("\nOutput::\n")
        .nth(1)
        .expect("an Output:: block");
    after
        .lines()
        .take_while(|line| line.trim().is_empty() || line.starts_with("    "))
        .map(|line| format!("{}\n", line.get(4..).unwrap_or_default()))
        .collect()
}

/// The stream records a localstack snapshot recorded (objects with an
/// `eventName` and a `dynamodb` object, keys walked in name order), one per
/// line, with its placeholders made real: `<sequence-number:N>` becomes the
/// 21-digit N, and a placeholder ApproximateCreationDateTime becomes
/// 1700000000 (seconds; milliseconds for a Kinesis-format record).
fn snapshot_records(json: &str) -> String {
    let snapshot: Value = serde_json::from_str(json).expect("snapshot JSON");
    let mut records = Vec::new();
    collect_records(&snapshot, &mut records);
    records
        .into_iter()
        .map(|mut record| {
            let kinesis_format = record.get("tableName").is_some();
            let stream = &mut record["dynamodb"];
            if let Some(n) = stream["SequenceNumber"]
                .as_str()
                .and_then(|s| s.strip_prefix("<sequence-number:"))
                .and_then(|s| s.strip_suffix('>'))
            {
                stream["SequenceNumber"] = Value::from(format!("{n:0>21}"));
            }
            if stream["ApproximateCreationDateTime"].is_string() {
                stream["ApproximateCreationDateTime"] = Value::from(if kinesis_format {
                    1_700_000_000_000_u64
                } else {
                    1_700_000_000
                });
            }
            format!("{record}\n")
        })
        .collect()
}

fn collect_records(value: &Value, out: &mut Vec<Value>) {
    match value {
        Value::Object(map)
            if map.get("eventName").is_some_and(Value::is_string)
                && map.get("dynamodb").is_some_and(Value::is_object) =>
        {
            out.push(value.clone());
        }
        Value::Object(map) => map.values().for_each(|v| collect_records(v, out)),
        Value::Array(list) => list.iter().for_each(|v| collect_records(v, out)),
        _ => {}
    }
}
