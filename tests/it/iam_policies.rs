//! The least-privilege IAM policies in docs/iam: each is a valid policy
//! document, and every action it grants names a real operation. For
//! DynamoDB, DynamoDB Streams, Kinesis and SQS the operation names come
//! from the AWS SDK crates the build already has (a misspelt name here
//! does not compile); S3 is reached through object_store, whose calls
//! (PUT, GET, HEAD) need only `s3:PutObject` and `s3:GetObject`. The
//! `elasticsearch` sink's requests are signed HTTP: `GET /`, `HEAD` and
//! `PUT` of an index, `POST` of `_bulk` and `_delete_by_query`, which
//! Amazon OpenSearch Service authorizes as `es:ESHttp<Method>` and
//! OpenSearch Serverless as `aoss:APIAccessAll`.

use std::collections::BTreeSet;
use std::path::Path;

/// The last path segment of a type's name: the SDK operation's name.
fn op<T>() -> String {
    let name = std::any::type_name::<T>();
    name.rsplit("::").next().unwrap_or(name).to_owned()
}

/// `service:Operation` for every operation the engine's policies may grant.
fn known_actions() -> BTreeSet<String> {
    use aws_sdk_dynamodb::operation as ddb;
    use aws_sdk_dynamodbstreams::operation as streams;
    use aws_sdk_kinesis::operation as kinesis;
    use aws_sdk_sqs::operation as sqs;
    let dynamodb = [
        op::<ddb::describe_table::DescribeTable>(),
        op::<ddb::describe_kinesis_streaming_destination::DescribeKinesisStreamingDestination>(),
        op::<ddb::create_table::CreateTable>(),
        op::<ddb::scan::Scan>(),
        op::<ddb::get_item::GetItem>(),
        op::<ddb::batch_get_item::BatchGetItem>(),
        op::<ddb::put_item::PutItem>(),
        op::<ddb::update_item::UpdateItem>(),
        op::<ddb::delete_item::DeleteItem>(),
        // DynamoDB Streams actions carry the `dynamodb:` prefix in IAM.
        op::<streams::describe_stream::DescribeStream>(),
        op::<streams::get_shard_iterator::GetShardIterator>(),
        op::<streams::get_records::GetRecords>(),
    ];
    let kinesis = [
        op::<kinesis::list_shards::ListShards>(),
        op::<kinesis::get_shard_iterator::GetShardIterator>(),
        op::<kinesis::get_records::GetRecords>(),
    ];
    let sqs = [
        op::<sqs::send_message::SendMessage>(),
        op::<sqs::receive_message::ReceiveMessage>(),
        op::<sqs::change_message_visibility::ChangeMessageVisibility>(),
        op::<sqs::delete_message::DeleteMessage>(),
        op::<sqs::get_queue_attributes::GetQueueAttributes>(),
    ];
    let mut known: BTreeSet<String> = BTreeSet::new();
    known.extend(dynamodb.iter().map(|o| format!("dynamodb:{o}")));
    known.extend(kinesis.iter().map(|o| format!("kinesis:{o}")));
    known.extend(sqs.iter().map(|o| format!("sqs:{o}")));
    known.extend(["s3:PutObject", "s3:GetObject"].map(str::to_owned));
    known.extend(
        [
            "es:ESHttpGet",
            "es:ESHttpHead",
            "es:ESHttpPut",
            "es:ESHttpPost",
            "aoss:APIAccessAll",
        ]
        .map(str::to_owned),
    );
    known
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn every_policy_grants_only_real_operations_on_named_resources() {
    let known = known_actions();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/iam");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("docs/iam")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    assert_eq!(
        names,
        [
            "kinesis-reader",
            "lease-table",
            "loader",
            "opensearch-sink",
            "s3-sqs-sink",
            "snapshot",
            "streams-reader"
        ],
        "the policies docs/src/operating/iam.md lists"
    );
    let mut granted = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read a policy");
        let policy: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", file.display()));
        assert_eq!(policy["Version"], "2012-10-17", "{}", file.display());
        let statements = policy["Statement"].as_array().expect("Statement list");
        assert!(!statements.is_empty(), "{}", file.display());
        for statement in statements {
            assert_eq!(statement["Effect"], "Allow", "{}", file.display());
            let resources = strings(&statement["Resource"]);
            assert!(
                !resources.is_empty()
                    && resources
                        .iter()
                        .all(|r| r.starts_with("arn:aws:") && r != "*"),
                "{}: resources must be named ARNs: {resources:?}",
                file.display()
            );
            for action in strings(&statement["Action"]) {
                assert!(
                    known.contains(&action),
                    "{}: {action} is not an operation of the SDKs (or one the engine uses)",
                    file.display()
                );
                granted.insert(action);
            }
        }
    }
    let unused: Vec<&String> = known.difference(&granted).collect();
    assert!(unused.is_empty(), "operations no policy grants: {unused:?}");
}
