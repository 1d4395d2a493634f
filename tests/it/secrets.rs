//! A password in every sink's settings, through a run that succeeds (with a
//! dead letter), a run whose sink refuses the password, `validate`, `status`
//! and the metrics endpoint: the password shows in none of their output,
//! logs, dead letters or state files.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::engine::{command, write_config};

const PASSWORD: &str = "pw-7Hq2-never-shown";

/// Every sink with the password where a password goes: PostgreSQL's URL
/// (the test server trusts any), OpenSearch basic auth, a Kafka SASL
/// property (unused over plaintext), ClickHouse's password (refused
/// when `clickhouse` is set: the server's default user has none).
fn sinks(dir: &Path, clickhouse: bool) -> String {
    let mut text = format!(
        "{sqlite}\n[[sinks]]\ntype = \"postgres\"\nurl = \"{pg} password={PASSWORD}\"\n\
         schema = \"{schema}\"\ncreate_table = true\n\n\
         [[sinks]]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"{topic}.{{table}}\"\n\
         create_topics = true\n[sinks.properties]\n\"sasl.username\" = \"cdc\"\n\
         \"sasl.password\" = \"{PASSWORD}\"\n\n{es}",
        sqlite = common::engine::sqlite_sink(&dir.join("replica.db")),
        pg = common::fleet::postgres_url(),
        schema = common::unique_table("secret_pg"),
        brokers = common::kafka::brokers(),
        topic = common::kafka::unique_topic_prefix("secret"),
        es = common::es_index::es_sink(
            dir,
            &common::opensearch::url(),
            common::es_index::UNMAPPED,
            &format!("username = \"cdc\"\npassword = \"{PASSWORD}\""),
        ),
    );
    if clickhouse {
        text.push_str(&format!(
            "\n[[sinks]]\ntype = \"clickhouse\"\nurl = \"{}\"\ndatabase = \"{}\"\n\
             create_table = true\npassword = \"{PASSWORD}\"\n",
            common::clickhouse::url(),
            common::clickhouse::unique_database("secret_ch"),
        ));
    }
    text
}

/// Runs a subcommand on `config` and returns its output.
fn run(args: &[&str], config: &Path) -> Output {
    let config = config.display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--config", &config]);
    command(&all).output().expect("run the engine")
}

/// Fails naming `what` when `text` holds the password.
fn assert_hidden(what: &str, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    assert!(
        !text.contains(PASSWORD),
        "the password shows in {what}:\n{text}"
    );
}

/// Every file under `dir` (state, logs, dead letters, replicas), recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_in_every_sink_never_shows() {
    let client = common::client().await;
    let table = common::unique_table("secrets");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 10, 30, 1001, 1).await;
    // A poison record: its dead letter is written too.
    common::raw_put_item(
        &table,
        r#"{"pk":{"S":"lone"},"sk":{"N":"1"},"v":{"S":"x\ud800y"}}"#,
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &[&table], "", &sinks(dir.path(), false));
    let mut outputs = vec![("validate", run(&["validate"], &config))];

    let good = run(&["run", "--exit-when-caught-up"], &config);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    outputs.push(("run", good));
    outputs.push(("status", run(&["status", "--json"], &config)));
    outputs.push(("checkpoints", run(&["checkpoints", "list"], &config)));

    // The ClickHouse server refuses the password: the error names the
    // sink and the server's answer, never the password.
    let refused_dir = dir.path().join("refused");
    std::fs::create_dir_all(&refused_dir).expect("dir");
    let refused_config = write_config(&refused_dir, &[&table], "", &sinks(&refused_dir, true));
    let refused = run(&["run", "--exit-when-caught-up"], &refused_config);
    assert!(
        !refused.status.success(),
        "ClickHouse took a wrong password"
    );
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("clickhouse"), "{said}");
    println!(
        "ClickHouse's refusal: {}",
        said.lines().last().unwrap_or("")
    );
    outputs.push(("run refused by ClickHouse", refused));

    for (what, output) in &outputs {
        assert_hidden(&format!("{what}'s standard output"), &output.stdout);
        assert_hidden(&format!("{what}'s standard error"), &output.stderr);
    }
    // The check can fail: the configs do hold the password.
    assert!(std::fs::read_to_string(&config).is_ok_and(|t| t.contains(PASSWORD)));
    let mut checked = 0;
    for file in files_under(dir.path()) {
        if file.extension().is_some_and(|e| e == "toml") {
            continue; // the configs themselves hold it
        }
        assert_hidden(
            &file.display().to_string(),
            &std::fs::read(&file).expect("read"),
        );
        checked += 1;
    }
    assert!(
        common::engine::dead_letters(dir.path(), &table).len() == 1,
        "the poison record was not dead-lettered"
    );
    println!(
        "{} outputs and {checked} files hold no password",
        outputs.len()
    );
}
