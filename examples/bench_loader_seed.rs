//! Seeds a loader benchmark (used by `scripts/bench-loader.sh`): writes N
//! synthetic changes as gzipped JSON Lines objects to S3 with one SQS notice
//! each, exactly as the `s3` sink does, and a Parquet dimension table of
//! customers keyed by `id`.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use clap::Parser;
use dynamo_cdc::sink::s3::{object_key, ObjectNotice};
use object_store::ObjectStoreExt;

#[path = "common/synthetic.rs"]
mod synthetic;

#[derive(Parser)]
struct Args {
    /// S3/SQS endpoint (moto).
    #[arg(long)]
    endpoint: String,
    /// Bucket (created).
    #[arg(long)]
    bucket: String,
    /// Queue name (created; its URL is printed as `queue_url=…`).
    #[arg(long)]
    queue: String,
    /// Changes to write.
    #[arg(long, default_value_t = 500_000)]
    changes: usize,
    /// Changes per object.
    #[arg(long, default_value_t = 10_000)]
    per_object: usize,
    /// Where to write the dimension table (Parquet).
    #[arg(long)]
    dimension: PathBuf,
    /// Rows of the dimension table.
    #[arg(long, default_value_t = 1_000_000)]
    dimension_rows: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(&args.bucket)
        .with_region("us-east-1")
        .with_endpoint(&args.endpoint)
        .with_allow_http(true)
        .build()?;
    let sqs_config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .endpoint_url(&args.endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "local", "local", None, None, "bench",
        ))
        .build();
    let sqs = aws_sdk_sqs::Client::from_conf(sqs_config);
    reqwest::Client::new()
        .put(format!("{}/{}", args.endpoint, args.bucket))
        .send()
        .await
        .context("create the bucket")?
        .error_for_status()
        .context("create the bucket")?;
    let queue_url = sqs
        .create_queue()
        .queue_name(&args.queue)
        .send()
        .await
        .context("create the queue")?
        .queue_url
        .context("no queue URL")?;
    let mut rng = fastrand::Rng::with_seed(11);
    let mut sequence = 0;
    let mut objects = 0;
    while sequence < args.changes {
        let count = args.per_object.min(args.changes - sequence);
        let events: Vec<_> = (0..count)
            .map(|i| synthetic::event(&mut rng, sequence + i, 200_000))
            .collect();
        sequence += count;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for event in &events {
            serde_json::to_writer(&mut encoder, event)?;
            encoder.write_all(b"\n")?;
        }
        let body = encoder.finish()?;
        let (first, last) = (&events[0], &events[events.len() - 1]);
        let key = object_key(
            "",
            &first.table,
            &first.position.shard,
            first.position.sequence.as_str(),
            last.position.sequence.as_str(),
            first.approx_time_ms,
            "jsonl.gz",
        );
        store
            .put(&object_store::path::Path::from(key.as_str()), body.into())
            .await
            .with_context(|| format!("put {key}"))?;
        let notice = ObjectNotice {
            bucket: args.bucket.clone(),
            key,
            table: first.table.to_string(),
            shard: first.position.shard.to_string(),
            records: events.len(),
            first_sequence: first.position.sequence.as_str().to_owned(),
            last_sequence: last.position.sequence.as_str().to_owned(),
            format: "jsonl.gz".into(),
        };
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(serde_json::to_string(&notice)?)
            .send()
            .await?;
        objects += 1;
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("segment", DataType::Utf8, false),
    ]));
    let file = std::fs::File::create(&args.dimension)?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, Arc::clone(&schema), None)?;
    for start in (0..args.dimension_rows).step_by(100_000) {
        let end = (start + 100_000).min(args.dimension_rows);
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from_iter_values(
                    (start..end).map(|i| format!("c{i}")),
                )),
                Arc::new(StringArray::from_iter_values(
                    (start..end).map(|i| format!("Customer number {i}")),
                )),
                Arc::new(StringArray::from_iter_values(
                    (start..end).map(|i| ["retail", "smb", "enterprise"][i % 3]),
                )),
            ],
        )?;
        writer.write(&batch)?;
    }
    writer.close()?;
    println!(
        "seeded {} changes in {objects} objects and a {}-row dimension table",
        args.changes, args.dimension_rows
    );
    println!("queue_url={queue_url}");
    Ok(())
}
