//! Exactly-once under overlap: two engine processes write the same shards
//! into one PostgreSQL schema at the same time (as two workers do briefly
//! during a lease handover). The checkpoints kept in the sink's own
//! transactions must make every change apply once: a trigger records every
//! row write, and no (key, version) may appear twice.

use crate::common;

use std::time::Duration;

use common::engine::{run_until_caught_up, write_config};
use common::fleet::postgres_url;

#[tokio::test(flavor = "multi_thread")]
async fn two_writers_on_one_shard_apply_each_change_once() {
    let client = common::client().await;
    let table = common::unique_table("overlap");
    common::create_table(&client, &table).await;
    let schema = common::unique_table("overlap");
    let sinks = format!(
        "[[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"\ncreate_table = true\n\
         [sinks.batch]\nmax_records = 20\nmax_age = \"5ms\"\n",
        postgres_url()
    );
    // A first run on the empty table creates the sink's tables.
    let first = tempfile::tempdir().expect("temp dir");
    run_until_caught_up(&write_config(
        first.path(),
        &[&table],
        "batch_size = 25",
        &sinks,
    ));
    let pg = common::fleet::postgres().await;
    pg.batch_execute(&format!(
        "CREATE TABLE \"{schema}\".applied (pk text, sk text, version numeric);
         CREATE FUNCTION \"{schema}\".record_apply() RETURNS trigger AS $$
         BEGIN INSERT INTO \"{schema}\".applied VALUES (NEW.pk, NEW.sk::text, NEW._version); RETURN NEW; END
         $$ LANGUAGE plpgsql;
         CREATE TRIGGER record_apply AFTER INSERT OR UPDATE ON \"{schema}\".\"{table}\"
         FOR EACH ROW EXECUTE FUNCTION \"{schema}\".record_apply();"
    ))
    .await
    .expect("install the trigger");
    common::workload::run(&client, &table, 60, 600, 130, 3).await;

    // Two writers, each with its own state, over the same stream at once.
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let configs: Vec<_> = dirs
        .iter()
        .map(|dir| write_config(dir.path(), &[&table], "batch_size = 25", &sinks))
        .collect();
    let runs: Vec<_> = configs
        .into_iter()
        .map(|config| tokio::task::spawn_blocking(move || run_until_caught_up(&config)))
        .collect();
    for run in runs {
        run.await.expect("a writer");
    }

    let twice = pg
        .query(
            &format!(
                "SELECT pk, sk, version::text, count(*) FROM \"{schema}\".applied \
                 GROUP BY 1, 2, 3 HAVING count(*) > 1 LIMIT 5"
            ),
            &[],
        )
        .await
        .expect("count applications");
    let listed: Vec<String> = twice
        .iter()
        .map(|row| {
            format!(
                "{}/{} v{} ×{}",
                row.get::<_, String>(0),
                row.get::<_, String>(1),
                row.get::<_, String>(2),
                row.get::<_, i64>(3)
            )
        })
        .collect();
    assert!(
        listed.is_empty(),
        "changes applied more than once: {listed:?}"
    );
    let applied: i64 = pg
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".applied"), &[])
        .await
        .expect("count")
        .get(0);
    assert!(applied > 0);
    let expected = common::scan(&client, &table).await;
    common::wait_for_async(
        "the live view to equal the table",
        Duration::from_secs(30),
        || {
            let expected = expected.clone();
            let (pg, schema, table) = (&pg, &schema, &table);
            async move { common::postgres::live(pg, schema, table).await == expected }
        },
    )
    .await;
}
