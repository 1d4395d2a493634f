//! Against DynamoDB Local and PostgreSQL 15: the live view equals a Scan of
//! the table value for value (38-digit numbers, sets and binary exact)
//! through a SIGKILL, and plain-JSON numbers keep every digit.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::engine::{run_until_caught_up, spawn, write_config};
use common::postgres::{live, OwnPostgres};
use dynamo_cdc::decode::decode_item;
use dynamo_cdc::model::{canonical_item, Item};

fn url() -> String {
    std::env::var("DYNAMO_CDC_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("DYNAMO_CDC_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL")
    })
}

async fn connect() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread")]
async fn live_view_equals_the_table_through_a_crash() {
    let client = common::client().await;
    let table = common::unique_table("pg");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 120, 500, 71, 4).await;
    let schema = common::unique_table("cdc");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &[&table],
        "batch_size = 50",
        &format!(
            "[[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"\ncreate_table = true\n\
             [sinks.batch]\nmax_records = 100\nmax_age = \"20ms\"\n",
            url()
        ),
    );
    let pg = connect().await;
    let log = dir.path().join("engine.log");
    let mut engine = spawn(&config, &log);
    common::wait_for_async(
        common::WithLog("rows", &log),
        Duration::from_secs(60),
        || async {
            let exists: Option<String> = pg
                .query_one(
                    &format!("SELECT to_regclass('\"{schema}\".\"{table}\"')::text"),
                    &[],
                )
                .await
                .expect("query")
                .get(0);
            exists.is_some()
                && pg
                    .query_one(
                        &format!("SELECT count(*) FROM \"{schema}\".\"{table}\""),
                        &[],
                    )
                    .await
                    .expect("count")
                    .get::<_, i64>(0)
                    > 0
        },
    )
    .await;
    engine.kill().expect("SIGKILL");
    engine.wait().expect("reap");
    common::workload::run(&client, &table, 120, 200, 72, 4).await;
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let expected = common::scan(&client, &table).await;
    common::assert_same(&expected, &live(&pg, &schema, &table).await);

    // Plain JSON keeps 38-digit numbers exact as jsonb numerics.
    let (key, item) = expected
        .iter()
        .find(|(_, item)| item.contains_key("big"))
        .expect("an item with a 38-digit number");
    let Some(dynamo_cdc::model::AttributeValue::N(big)) = item.get("big") else {
        panic!("big is a number")
    };
    let stored: String = pg
        .query_one(
            &format!("SELECT (item->'big')::text FROM \"{schema}\".\"{table}_live\" WHERE pk = $1 AND sk = $2::text::numeric"),
            &[&key.0, &key.1],
        )
        .await
        .expect("query")
        .get(0);
    assert_eq!(stored, dynamo_cdc::model::json_number(big));
    let deleted: i64 = pg
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".\"{table}\" WHERE _deleted"),
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert!(deleted > 0, "deletes are kept as versioned tombstones");
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_skips_what_the_database_already_committed() {
    let client = common::client().await;
    let table = common::unique_table("pg_once");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 40, 150, 73, 2).await;
    let schema = common::unique_table("cdc");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &format!("[[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"\ncreate_table = true\n", url()),
    );
    let config_clone = config.clone();
    tokio::task::spawn_blocking(move || run_until_caught_up(&config_clone))
        .await
        .expect("run");
    let pg = connect().await;
    let checkpoint: String = pg
        .query_one(
            &format!("SELECT sequence FROM \"{schema}\".dynamo_cdc_checkpoints"),
            &[],
        )
        .await
        .expect("the sink's checkpoint")
        .get(0);
    assert!(checkpoint.len() >= 21, "{checkpoint}");

    // A crash after the database committed but before the engine wrote its
    // own checkpoint: the engine replays everything. Mark every row so that
    // a re-applied change would show.
    std::fs::remove_file(dir.path().join("state/checkpoints.db")).expect("drop engine checkpoints");
    let marked = pg
        .execute(
            &format!("UPDATE \"{schema}\".\"{table}\" SET _version = 0"),
            &[],
        )
        .await
        .expect("mark");
    assert!(marked > 0);
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("replay");
    let reapplied: i64 = pg
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".\"{table}\" WHERE _version <> 0"),
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(
        reapplied, 0,
        "the replay applied changes the database had already committed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn database_restart_mid_run_loses_nothing() {
    let client = common::client().await;
    let table = common::unique_table("pg_restart");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 60, 200, 74, 2).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = OwnPostgres::create(&dir.path().join("pg"));
    let config = write_config(
        dir.path(),
        &[&table],
        "batch_size = 20",
        &format!(
            "[[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\ncreate_table = true\n[sinks.batch]\nmax_records = 20\nmax_age = \"10ms\"\nmax_retry_backoff = \"500ms\"\n",
            server.url()
        ),
    );
    let log = dir.path().join("engine.log");
    let mut engine = spawn(&config, &log);
    let (pg, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    common::wait_for_async(
        common::WithLog("rows", &log),
        Duration::from_secs(60),
        || async {
            pg.query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
                .await
                .map(|r| r.get::<_, i64>(0))
                .unwrap_or(0)
                > 0
        },
    )
    .await;
    // The database goes away while changes keep coming, then comes back.
    server.stop();
    common::workload::run(&client, &table, 60, 100, 75, 2).await;
    let log_clone = log.clone();
    tokio::task::spawn_blocking(move || {
        common::wait_for(
            "the engine to notice the outage",
            Duration::from_secs(60),
            || std::fs::read_to_string(&log_clone).is_ok_and(|l| l.contains("will retry")),
        )
    })
    .await
    .expect("wait");
    server.start();
    // The running engine reconnects and catches up; then stop it cleanly.
    let expected = common::scan(&client, &table).await;
    let url = server.url();
    common::wait_for_async(
        common::WithLog("convergence after the restart", &log),
        Duration::from_secs(90),
        || async {
            let Ok((pg, connection)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await
            else {
                return false;
            };
            tokio::spawn(connection);
            let rows = pg
                .query(
                    &format!("SELECT pk, sk::text, item_dynamodb::text FROM \"{table}_live\""),
                    &[],
                )
                .await
                .unwrap_or_default();
            let live: BTreeMap<(String, String), Item> = rows
                .iter()
                .map(|row| {
                    let item = decode_item(row.get::<_, &str>(2)).expect("item");
                    (
                        (row.get::<_, String>(0), row.get::<_, String>(1)),
                        canonical_item(&item),
                    )
                })
                .collect();
            live == expected
        },
    )
    .await;
    engine.kill().expect("stop the engine");
    engine.wait().expect("reap");
}

#[tokio::test(flavor = "multi_thread")]
async fn tombstones_are_purged_after_the_retention() {
    let client = common::client().await;
    let table = common::unique_table("pg_purge");
    common::create_table(&client, &table).await;
    let counts = common::workload::run(&client, &table, 30, 120, 76, 2).await;
    assert!(counts.deletes > 0);
    let schema = common::unique_table("cdc");
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = format!("[[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"\ncreate_table = true\n", url());
    let config = write_config(dir.path(), &[&table], "", &sink);
    let config_clone = config.clone();
    tokio::task::spawn_blocking(move || run_until_caught_up(&config_clone))
        .await
        .expect("run");
    let pg = connect().await;
    let tombstones_sql = format!("SELECT count(*) FROM \"{schema}\".\"{table}\" WHERE _deleted");
    let tombstones = pg
        .query_one(&tombstones_sql, &[])
        .await
        .expect("count")
        .get::<_, i64>(0);
    assert!(tombstones > 0);

    // With a retention, the next batch purges the tombstones older than it.
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &format!("{sink}purge_tombstones_after = \"1ms\"\n"),
    );
    client
        .put_item()
        .table_name(&table)
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("fresh".into()),
        )
        .item("sk", aws_sdk_dynamodb::types::AttributeValue::N("1".into()))
        .send()
        .await
        .expect("put");
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let tombstones = pg
        .query_one(&tombstones_sql, &[])
        .await
        .expect("count")
        .get::<_, i64>(0);
    assert_eq!(tombstones, 0);
    common::assert_same(
        &common::scan(&client, &table).await,
        &live(&pg, &schema, &table).await,
    );
}

/// A string PostgreSQL cannot store (NUL: jsonb rejects `\u0000`) → that
/// change goes to the dead-letter file with the database's message; the rest
/// of its batch lands.
async fn rejected_row_goes_to_dead_letters(method: &str) {
    use aws_sdk_dynamodb::types::AttributeValue as Av;
    let client = common::client().await;
    let table = common::unique_table(&format!("pg_reject_{method}"));
    common::create_table(&client, &table).await;
    for i in 0..20 {
        let note = if i == 7 { "nul\u{0}inside" } else { "fine" };
        client
            .put_item()
            .table_name(&table)
            .item("pk", Av::S(format!("item-{i}")))
            .item("sk", Av::N("1".into()))
            .item("note", Av::S(note.into()))
            .send()
            .await
            .expect("put");
    }
    let schema = common::unique_table("cdc");
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = format!(
        "[[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"\ncreate_table = true\nwrite_method = \"{method}\"\n",
        url()
    );
    let config = write_config(dir.path(), &[&table], "", &sink);
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let pg = connect().await;
    let mut expected = common::scan(&client, &table).await;
    expected.retain(|(pk, _), _| pk != "item-7");
    assert_eq!(expected.len(), 19);
    assert_eq!(live(&pg, &schema, &table).await, expected);
    let dead =
        std::fs::read_to_string(dir.path().join(format!("state/dead-letters/{table}.jsonl")))
            .expect("a dead-letter file");
    assert_eq!(dead.lines().count(), 1, "{dead}");
    assert!(dead.contains("item-7"), "{dead}");
    assert!(dead.contains("PostgreSQL rejected the row"), "{dead}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_row_goes_to_dead_letters_with_copy() {
    rejected_row_goes_to_dead_letters("copy").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_row_goes_to_dead_letters_with_insert() {
    rejected_row_goes_to_dead_letters("insert").await;
}
