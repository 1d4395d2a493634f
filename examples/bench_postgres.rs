//! PostgreSQL sink benchmark (used by `scripts/bench-postgres.sh`): the
//! synthetic stream written in batches as the sink driver would, reporting
//! changes/s and batch latency percentiles. Run it under `/usr/bin/time -v`.

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use dynamo_cdc::config::{BatchConfig, PostgresSinkConfig, Secret, SqlDialect};
use dynamo_cdc::coordinator::{AckTracker, Chunk, ShardKey};
use dynamo_cdc::model::{ChangeEvent, KeyKind, TableSchema};
use dynamo_cdc::sink::postgres::PostgresSink;
use dynamo_cdc::sink::{Batch, SinkWriter};

#[path = "common/synthetic.rs"]
mod synthetic;

#[derive(Parser)]
struct Args {
    /// Connection string.
    #[arg(long)]
    url: String,
    /// Changes to generate.
    #[arg(long, default_value_t = 500_000)]
    changes: usize,
    /// Distinct items.
    #[arg(long, default_value_t = 100_000)]
    keys: usize,
    /// Changes per batch (one transaction).
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
    /// Write the checkpoint in each transaction.
    #[arg(long)]
    exactly_once: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let schema_name = format!("bench_{}", std::process::id());
    let config = PostgresSinkConfig {
        name: None,
        url: Secret::new(args.url.clone()),
        schema: schema_name.clone(),
        table_prefix: String::new(),
        create_table: true,
        dialect: SqlDialect::Postgres,
        exactly_once: Some(args.exactly_once),
        purge_tombstones_after: None,
        batch: BatchConfig::default(),
    };
    let schema = TableSchema::new("bench_orders", &[("pk", KeyKind::S), ("sk", KeyKind::N)]);
    let mut sink = PostgresSink::connect("postgres", &config, &[schema]).await?;
    let tracker = AckTracker::new();
    let key = ShardKey {
        stream: Arc::from("bench"),
        shard: Arc::from("shardId-bench"),
    };
    tracker.open_shard(key.clone(), Arc::from("bench_orders"), None);
    let mut rng = fastrand::Rng::with_seed(7);
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut sequence = 0;
    while sequence < args.changes {
        let mut chunks = Vec::new();
        let mut in_batch = 0;
        while in_batch < args.batch && sequence < args.changes {
            let page = 1000.min(args.changes - sequence);
            let events: Vec<ChangeEvent> = (0..page)
                .map(|i| synthetic::event(&mut rng, sequence + i, args.keys))
                .collect();
            sequence += page;
            in_batch += page;
            let last = events
                .last()
                .map(|e| e.position.sequence.clone())
                .expect("page");
            let ack = tracker.register(&key, last, 1)?;
            chunks.push(Arc::new(Chunk {
                table: Arc::from("bench_orders"),
                bytes: 600 * page as u64,
                events,
                ack,
            }));
        }
        let batch = Batch { chunks };
        let t0 = Instant::now();
        let rejected = sink.write(batch.clone()).await?;
        latencies.push(t0.elapsed());
        anyhow::ensure!(rejected.is_empty(), "rows rejected: {:?}", rejected.first());
        for chunk in &batch.chunks {
            chunk.ack.ack()?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1e3
    };
    println!(
        "postgres multi-row upserts{}: {} changes in {seconds:.2} s = {:.0} changes/s; {} batches of {}; batch latency p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms",
        if args.exactly_once { " + exactly-once checkpoints" } else { "" },
        args.changes,
        args.changes as f64 / seconds,
        latencies.len(),
        args.batch,
        pct(0.5),
        pct(0.9),
        pct(0.99),
    );
    println!("schema: {schema_name}");
    Ok(())
}
