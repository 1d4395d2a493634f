//! PostgreSQL sink benchmark (used by `scripts/bench-postgres.sh`): the
//! synthetic stream written in batches as the sink driver would, reporting
//! changes/s and batch latency percentiles. Run it under `/usr/bin/time -v`.

use clap::Parser;
use dynamo_cdc::config::Secret;
use dynamo_cdc::model::{KeyKind, TableSchema};
use dynamo_cdc::sink::columns::ColumnsSetting;
use dynamo_cdc::sink::postgres::PostgresSink;
use dynamo_cdc::sink::postgres::{PgWriteMethod, PostgresSinkConfig, SqlDialect};
use dynamo_cdc::sink::BatchConfig;

#[path = "common/drive.rs"]
mod drive;
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
    /// `insert` (multi-row upserts) or `copy` (COPY into a staging table + merge).
    #[arg(long, default_value = "copy")]
    method: String,
    /// Typed columns inferred from the items (`columns = "auto"`).
    #[arg(long)]
    auto_columns: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let schema_name = format!("bench_{}", std::process::id());
    let method = match args.method.as_str() {
        "insert" => PgWriteMethod::Insert,
        "copy" => PgWriteMethod::Copy,
        other => anyhow::bail!("--method must be insert or copy, not {other:?}"),
    };
    let config = PostgresSinkConfig {
        name: None,
        url: Secret::new(args.url.clone()),
        ca_file: None,
        schema: schema_name.clone(),
        table_prefix: String::new(),
        create_table: true,
        dialect: SqlDialect::Postgres,
        exactly_once: Some(args.exactly_once),
        write_method: Some(method),
        purge_tombstones_after: None,
        columns: if args.auto_columns {
            ColumnsSetting::Auto
        } else {
            ColumnsSetting::None
        },
        batch: BatchConfig::default(),
    };
    let schema = TableSchema::new("bench_orders", &[("pk", KeyKind::S), ("sk", KeyKind::N)]);
    let mut sink = PostgresSink::connect("postgres", &config, &[schema]).await?;
    let measured = drive::drive(&mut sink, args.changes, args.keys, args.batch).await?;
    let (seconds, latencies) = (measured.seconds, &measured.latencies);
    let pct = |p: f64| measured.percentile_ms(p);
    println!(
        "postgres {}{}: {} changes in {seconds:.2} s = {:.0} changes/s; {} batches of {}; batch latency p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms",
        match method {
            PgWriteMethod::Insert => "multi-row upserts",
            PgWriteMethod::Copy => "COPY + merge",
        },
        if args.exactly_once { " + exactly-once checkpoints" } else { "" }.to_owned()
            + if args.auto_columns { " + inferred columns" } else { "" },
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
