//! `columns = "auto"`: typed columns inferred from the items, added and
//! widened while a workload adds attributes and changes their types, end
//! equal to the table value for value, through two SIGKILLs; the schema
//! history (`dynamo-cdc schema show`) records every change.

use crate::common;

use std::time::Duration;

use common::engine::{command, spawn, write_config};
use common::evolving::{write_phase, PHASES};
use common::typed_sinks::{column_exists, final_kinds, sinks, wait_typed_columns_equal, Targets};
use dynamo_cdc::schema::{naming, ColumnKind};

#[tokio::test(flavor = "multi_thread")]
async fn typed_columns_follow_changing_attributes_through_two_kills() {
    let client = common::client().await;
    let targets = Targets {
        database: common::clickhouse::unique_database("typed"),
        schema: common::unique_table("typed"),
        table: common::unique_table("typed"),
    };
    let (database, table) = (&targets.database, &targets.table);
    common::create_table(&client, table).await;
    let pg = common::fleet::postgres().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &[table], "batch_size = 20", &sinks(&targets));
    write_phase(&client, table, 0).await;
    let mut engine = spawn(&config, &dir.path().join("engine-1.log"));
    // A kill after the decimals arrive, and one after the last phase's
    // new attributes do: each restart replays what was not checkpointed
    // into columns that already exist.
    let kill_after = [(1, "price"), (PHASES - 1, "huge")];
    for phase in 1..PHASES {
        write_phase(&client, table, phase).await;
        if let Some((_, column)) = kill_after.iter().find(|(p, _)| *p == phase) {
            common::wait_for_async(
                &format!("column {column} in ClickHouse"),
                Duration::from_secs(60),
                || column_exists(database, table, column),
            )
            .await;
            engine.kill().expect("SIGKILL");
            engine.wait().expect("reap");
            engine = spawn(
                &config,
                &dir.path().join(format!("engine-{}.log", phase + 1)),
            );
        }
    }
    let items = common::scan(&client, table).await;
    wait_typed_columns_equal(&config, &targets, &pg, &items).await;
    drop(engine);

    let kinds = final_kinds(&config);
    let kind_in = |sink: &str, attribute: &str| {
        kinds
            .iter()
            .find(|((s, _), (a, _))| s == sink && a == attribute)
            .map(|(_, (_, kind))| *kind)
            .unwrap_or_else(|| panic!("no column for {attribute:?} in {sink}: {kinds:?}"))
    };
    let kind_of = |attribute: &str| kind_in("ch", attribute);
    assert_eq!(
        kind_in("pg", "qty"),
        ColumnKind::Text,
        "bigint → numeric → text"
    );
    assert_eq!(
        kind_in("pg", "active"),
        ColumnKind::Text,
        "PostgreSQL widens bool to text"
    );
    assert!(
        matches!(kind_in("pg", "tiny"), ColumnKind::Decimal { .. }),
        "numeric holds 1E-130"
    );
    assert_eq!(kind_of("qty"), ColumnKind::Text, "int → decimal → text");
    assert_eq!(kind_of("price"), ColumnKind::Decimal { scale: 6 });
    assert_eq!(
        kind_of("active"),
        ColumnKind::Bool,
        "a UInt8 bool is not widened"
    );
    assert_eq!(kind_of("meta"), ColumnKind::Json);
    assert_eq!(kind_of("tags"), ColumnKind::TextArray);
    assert_eq!(kind_of("huge"), ColumnKind::Decimal { scale: 0 });
    assert_eq!(kind_of("tiny"), ColumnKind::Text);
    assert!(kinds.contains_key(&(
        "ch".to_owned(),
        naming::column_name("first name", |_| false)
    )));
    assert!(kinds.contains_key(&("ch".to_owned(), "___5Fversion".to_owned())));
    assert!(
        !kinds.values().any(|(a, _)| a == "note"),
        "an attribute that is only ever NULL gets no column"
    );
    let history = command(&["schema", "show", "--config", &config.display().to_string()])
        .output()
        .expect("schema show");
    let text = String::from_utf8_lossy(&history.stdout);
    assert!(text.contains("widened from decimal(6)"), "{text}");
}
