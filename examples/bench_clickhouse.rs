//! ClickHouse sink benchmark (used by `scripts/bench-clickhouse.sh`).
//!
//! Generates a synthetic stream of N changes (inserts, updates and deletes
//! over a key space, ~0.5 KB items with a 38-digit number, a string set and a
//! nested map), hands it to the `clickhouse` sink in batches exactly as the
//! engine's sink driver would, and reports changes/s and batch-insert
//! latency percentiles. Run it under `/usr/bin/time -v` for CPU and RSS.

use std::time::Duration;

use clap::Parser;

#[path = "common/drive.rs"]
mod drive;
#[path = "common/synthetic.rs"]
mod synthetic;
use dynamo_cdc::model::{KeyKind, TableSchema};
use dynamo_cdc::sink::clickhouse::ClickHouseSink;
use dynamo_cdc::sink::clickhouse::{ClickHouseMode, ClickHouseSinkConfig};
use dynamo_cdc::sink::columns::ColumnMapping;
use dynamo_cdc::sink::columns::ColumnsSetting;
use dynamo_cdc::sink::BatchConfig;

#[derive(Parser)]
struct Args {
    /// ClickHouse HTTP URL.
    #[arg(long)]
    url: String,
    /// Changes to generate.
    #[arg(long, default_value_t = 1_000_000)]
    changes: usize,
    /// Distinct items.
    #[arg(long, default_value_t = 100_000)]
    keys: usize,
    /// Changes per insert batch.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// `state` or `changelog`.
    #[arg(long, default_value = "state")]
    mode: String,
    /// Also fill two mapped columns (Decimal and String).
    #[arg(long, conflicts_with = "auto_columns")]
    mapped: bool,
    /// Typed columns inferred from the items (`columns = "auto"`).
    #[arg(long)]
    auto_columns: bool,
    /// Gzip the inserts (`--compress false` when the server is local).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    compress: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mode = match args.mode.as_str() {
        "state" => ClickHouseMode::State,
        "changelog" => ClickHouseMode::Changelog,
        other => anyhow::bail!("unknown mode {other}"),
    };
    let columns = if args.mapped {
        ColumnsSetting::Mapped(vec![
            ColumnMapping {
                name: "amount".into(),
                attribute: None,
                column_type: "Decimal(18, 2)".into(),
                table: None,
            },
            ColumnMapping {
                name: "status".into(),
                attribute: None,
                column_type: "Nullable(String)".into(),
                table: None,
            },
        ])
    } else if args.auto_columns {
        ColumnsSetting::Auto
    } else {
        ColumnsSetting::None
    };
    let database = format!("bench_{}", std::process::id());
    let config = ClickHouseSinkConfig {
        name: None,
        url: args.url.clone(),
        database: database.clone(),
        user: "default".into(),
        password: None,
        mode,
        table_prefix: String::new(),
        create_table: true,
        columns,
        max_concurrency: 4,
        request_timeout: Duration::from_secs(120),
        compress: args.compress,
        batch: BatchConfig::default(),
    };
    let schema = TableSchema::new("bench_orders", &[("pk", KeyKind::S), ("sk", KeyKind::N)]);
    let mut sink = ClickHouseSink::connect("clickhouse", &config, &[schema]).await?;
    let measured = drive::drive(&mut sink, args.changes, args.keys, args.batch).await?;
    let (seconds, latencies) = (measured.seconds, &measured.latencies);
    let pct = |p: f64| measured.percentile_ms(p);
    println!(
        "clickhouse {} mode{}: {} changes in {seconds:.2} s = {:.0} changes/s; {} batches of {}; insert latency p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        args.mode,
        if args.mapped { " + 2 mapped columns" } else { "" },
        args.changes,
        args.changes as f64 / seconds,
        latencies.len(),
        args.batch,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0),
    );
    println!("database: {database}");
    Ok(())
}
