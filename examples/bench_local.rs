//! Benchmark driver against DynamoDB Local (used by `scripts/bench.sh`).
//!
//! `load`: writes N items (BatchWriteItem, several writers) so that the
//! stream holds N changes for a throughput run.
//! `latency`: while an engine follows the table into SQLite, writes items at
//! a steady rate and measures, for each, the time until its row is visible
//! in the replica; prints percentiles.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Args {
    /// DynamoDB Local endpoint.
    #[arg(long)]
    endpoint: String,
    /// Table (pk S, sk N).
    #[arg(long)]
    table: String,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Create the table (pk S, sk N) with a NEW_AND_OLD_IMAGES stream.
    Create,
    /// Write `items` items of about `item_bytes` bytes.
    Load {
        #[arg(long)]
        items: usize,
        #[arg(long, default_value_t = 600)]
        item_bytes: usize,
        #[arg(long, default_value_t = 8)]
        writers: usize,
    },
    /// Write `samples` items at `rate` per second and time their arrival in `replica`.
    Latency {
        #[arg(long)]
        replica: PathBuf,
        #[arg(long, default_value_t = 300)]
        samples: usize,
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        /// Items per write request: 1 = PutItem, up to 25 = BatchWriteItem
        /// (the rate stays in items per second).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=25))]
        batch: u16,
    },
}

fn item(pk: String, bytes: usize) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::N("1".to_owned())),
        (
            "amount".to_owned(),
            AttributeValue::N("12345678901234567890.123456789".to_owned()),
        ),
        ("payload".to_owned(), AttributeValue::S("x".repeat(bytes))),
        (
            "tags".to_owned(),
            AttributeValue::Ss(vec!["a".into(), "b".into()]),
        ),
        (
            "doc".to_owned(),
            AttributeValue::M(HashMap::from([(
                "n".to_owned(),
                AttributeValue::N("7".to_owned()),
            )])),
        ),
    ])
}

async fn load(
    client: &Client,
    table: &str,
    items: usize,
    bytes: usize,
    writers: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let client = client.clone();
        let table = table.to_owned();
        tasks.push(tokio::spawn(async move {
            let mine: Vec<usize> = (0..items).filter(|i| i % writers == writer).collect();
            for group in mine.chunks(25) {
                let pks: Vec<String> = group.iter().map(|i| format!("item-{i:09}")).collect();
                batch_write(&client, &table, &pks, bytes).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "loaded {items} items in {seconds:.1} s ({:.0} writes/s)",
        items as f64 / seconds
    );
    Ok(())
}

/// Writes `pks` (one PutItem, or one BatchWriteItem retried until nothing is
/// left unprocessed) as items of about 200 bytes.
async fn write_items(client: &Client, table: &str, pks: &[String]) -> anyhow::Result<()> {
    if let [pk] = pks {
        client
            .put_item()
            .table_name(table)
            .set_item(Some(item(pk.clone(), 200)))
            .send()
            .await
            .context("put")?;
        return Ok(());
    }
    batch_write(client, table, pks, 200).await
}

/// One BatchWriteItem of `pks` (at most 25) as items of about `bytes`,
/// repeated with the unprocessed rest until DynamoDB took them all.
async fn batch_write(
    client: &Client,
    table: &str,
    pks: &[String],
    bytes: usize,
) -> anyhow::Result<()> {
    let mut requests: Vec<WriteRequest> = pks
        .iter()
        .map(|pk| {
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(item(pk.clone(), bytes)))
                        .build()
                        .expect("put request"),
                )
                .build()
        })
        .collect();
    while !requests.is_empty() {
        let output = client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .context("batch write")?;
        requests = output
            .unprocessed_items
            .and_then(|mut u| u.remove(table))
            .unwrap_or_default();
    }
    Ok(())
}

async fn latency(
    client: &Client,
    table: &str,
    replica: PathBuf,
    samples: usize,
    rate: f64,
    batch: usize,
) -> anyhow::Result<()> {
    let interval = Duration::from_secs_f64(batch as f64 / rate);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let table_name = table.to_owned();
    let watcher = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Duration>> {
        let conn = loop {
            if let Ok(conn) = rusqlite::Connection::open_with_flags(
                &replica,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            ) {
                if conn
                    .prepare(&format!("SELECT 1 FROM \"{table_name}\" LIMIT 1"))
                    .is_ok()
                {
                    break conn;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stmt = conn.prepare(&format!(
            "SELECT count(*) FROM \"{table_name}\" WHERE pk = ?1"
        ))?;
        let mut latencies = Vec::new();
        while let Some((pk, written)) = rx.blocking_recv() {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let found: i64 = stmt.query_row([&pk], |row| row.get(0))?;
                if found > 0 {
                    latencies.push(written.elapsed());
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "{pk} did not arrive within 30 s");
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        Ok(latencies)
    });
    // Writes start on a steady clock and run concurrently, so rates above
    // one writer's round trips (e.g. 2,000/s) are reachable.
    let mut ticker = tokio::time::interval(interval);
    let mut writes = tokio::task::JoinSet::new();
    // At most 32 writes in flight (DynamoDB Local refuses connections beyond
    // that); when it cannot keep up, the achieved rate is printed.
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let started = Instant::now();
    for first in (0..samples).step_by(batch) {
        ticker.tick().await;
        let permit = std::sync::Arc::clone(&in_flight).acquire_owned().await?;
        let pks: Vec<String> = (first..(first + batch).min(samples))
            .map(|i| format!("latency-{}-{i}", std::process::id()))
            .collect();
        let (client, table, tx) = (client.clone(), table.to_owned(), tx.clone());
        writes.spawn(async move {
            let _permit = permit;
            write_items(&client, &table, &pks).await?;
            // The clock starts when DynamoDB acknowledged the write. A closed
            // channel means the watcher failed; its error is reported below.
            let acknowledged = Instant::now();
            for pk in pks {
                let _ = tx.send((pk, acknowledged));
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    while let Some(done) = writes.join_next().await {
        done??;
    }
    let achieved = samples as f64 / started.elapsed().as_secs_f64();
    drop(tx);
    let mut latencies = watcher.await??;
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "write->row latency over {} writes at {rate}/s in requests of {batch} (achieved {achieved:.0}/s): p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.90).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );
    Ok(())
}

async fn create(client: &Client, table: &str) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        StreamSpecification, StreamViewType,
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(ScalarAttributeType::N)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()?,
        )
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()?,
        )
        .send()
        .await
        .context("create table")?;
    println!("created {table}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(&args.endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "bench",
        ))
        .build();
    let client = Client::from_conf(config);
    match args.mode {
        Mode::Create => create(&client, &args.table).await,
        Mode::Load {
            items,
            item_bytes,
            writers,
        } => load(&client, &args.table, items, item_bytes, writers).await,
        Mode::Latency {
            replica,
            samples,
            rate,
            batch,
        } => {
            latency(
                &client,
                &args.table,
                replica,
                samples,
                rate,
                usize::from(batch),
            )
            .await
        }
    }
}
