//! The kill loop: the engine is SIGKILLed at random instants while a
//! workload runs, into SQLite, PostgreSQL and ClickHouse at once (plus JSON
//! Lines, append-only, to count duplicates). After a last clean run every
//! replica equals a Scan and every change in the stream is in the JSON
//! Lines files: changes lost must be 0.
//!
//! CI runs 5 kills over 1,000 changes; `scripts/soak.sh` runs 50 kills over
//! 100,000 (`DYNAMO_CDC_SOAK_KILLS`, `DYNAMO_CDC_SOAK_CHANGES`).

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::engine::{run_until_caught_up, spawn, write_config};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sinks(dir: &Path, schema: &str, database: &str) -> String {
    format!(
        "{sqlite}\n[[sinks]]\ntype = \"jsonl\"\ndir = \"{jsonl}\"\n\n\
         [[sinks]]\ntype = \"postgres\"\nurl = \"{pg}\"\nschema = \"{schema}\"\ncreate_table = true\n\n\
         [[sinks]]\ntype = \"clickhouse\"\nurl = \"{ch}\"\ndatabase = \"{database}\"\ncreate_table = true\n",
        sqlite = common::engine::sqlite_sink(&dir.join("replica.db")),
        jsonl = dir.join("changes").display(),
        pg = common::fleet::postgres_url(),
        ch = common::clickhouse::url(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkills_at_random_instants_lose_nothing() {
    let kills = setting("DYNAMO_CDC_SOAK_KILLS", 5);
    let changes = setting("DYNAMO_CDC_SOAK_CHANGES", 1_000);
    let started = Instant::now();
    let client = common::client().await;
    let table = common::unique_table("soak");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 10, 10, 900, 1).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let _logs = common::fleet::ReportLogs(dir.path().to_owned());
    let schema = common::unique_table("soak_pg");
    let database = common::clickhouse::unique_database("soak_ch");
    let config = write_config(
        dir.path(),
        &[&table],
        "batch_size = 200",
        &sinks(dir.path(), &schema, &database),
    );
    let writer = tokio::spawn({
        let (client, table) = (client.clone(), table.clone());
        async move { common::workload::run(&client, &table, 2_000, changes, 901, 4).await }
    });
    let mut rng = fastrand::Rng::with_seed(902);
    for kill in 0..kills {
        let log = dir.path().join(format!("engine-{kill}.log"));
        let mut engine = spawn(&config, &log);
        let alive = Duration::from_millis(rng.u64(300..3_000));
        tokio::time::sleep(alive).await;
        engine.kill().expect("SIGKILL");
        engine.wait().expect("reap");
    }
    let counts = writer.await.expect("writer");
    println!(
        "soak: workload of {changes} done after {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let config_path = config.clone();
    tokio::task::spawn_blocking(move || run_until_caught_up(&config_path))
        .await
        .expect("last run");

    let expected = common::scan(&client, &table).await;
    common::assert_same(
        &expected,
        &common::replica(&dir.path().join("replica.db"), &table),
    );
    let pg = common::fleet::postgres().await;
    common::assert_same(
        &expected,
        &common::postgres::live(&pg, &schema, &table).await,
    );
    common::assert_same(
        &expected,
        &common::clickhouse::state(&database, &table).await,
    );

    let in_stream: BTreeSet<u128> = common::streams::records(&table)
        .await
        .into_iter()
        .map(|(sequence, _)| sequence)
        .collect();
    let events = common::jsonl_sequences(&dir.path().join("changes").join(&table));
    let delivered: BTreeSet<u128> = events.iter().copied().collect();
    let lost = in_stream.difference(&delivered).count();
    let duplicates = events.len() - delivered.len();
    let report = format!(
        "soak: {kills} SIGKILLs, {} changes written ({} in the stream), lost {lost}, \
         JSON Lines duplicates {duplicates}, {:.0} s in all",
        counts.total(),
        in_stream.len(),
        started.elapsed().as_secs_f64()
    );
    println!("{report}");
    if let Ok(path) = std::env::var("DYNAMO_CDC_SOAK_REPORT") {
        std::fs::write(path, format!("{report}\n")).expect("write the report");
    }
    assert_eq!(lost, 0, "{report}");
}
