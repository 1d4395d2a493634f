//! The postgres sink over TLS (`sslmode=require`, rustls): against a
//! PostgreSQL that accepts TCP only over TLS, with a certificate from a
//! private CA given as `ca_file`; without the CA or without TLS the engine
//! stops with an error that says why.

use crate::common;

use common::engine::{command, run_until_caught_up, write_config};
use common::postgres::{live, OwnPostgres};

fn sink(url: &str, ca_file: Option<&std::path::Path>) -> String {
    let ca = ca_file
        .map(|p| format!("ca_file = \"{}\"\n", p.display()))
        .unwrap_or_default();
    format!("[[sinks]]\ntype = \"postgres\"\nurl = \"{url}\"\n{ca}create_table = true\n")
}

fn run_failing(config: &std::path::Path) -> String {
    let output = command(&[
        "run",
        "--config",
        &config.display().to_string(),
        "--exit-when-caught-up",
    ])
    .output()
    .expect("run the engine");
    assert!(!output.status.success(), "the engine should fail");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_private_ca_converges_and_plain_is_refused() {
    let client = common::client().await;
    let table = common::unique_table("pg_tls");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 40, 150, 91, 2).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, tls) = OwnPostgres::create_tls(&dir.path().join("pg"));

    // Plain TCP: the server only accepts TLS on 127.0.0.1.
    let plain = write_config(dir.path(), &[&table], "", &sink(&server.url(), None));
    let stderr = run_failing(&plain);
    assert!(stderr.contains("cannot connect to PostgreSQL"), "{stderr}");
    assert!(stderr.contains("no encryption"), "{stderr}");

    // TLS without the private CA: the certificate is not trusted.
    let tls_url = format!("{} sslmode=require", server.url());
    let untrusted = write_config(dir.path(), &[&table], "", &sink(&tls_url, None));
    let stderr = run_failing(&untrusted);
    assert!(
        stderr.contains("cannot connect to PostgreSQL (TLS)") && stderr.contains("UnknownIssuer"),
        "{stderr}"
    );

    // TLS with the CA: every change arrives.
    let config = write_config(dir.path(), &[&table], "", &sink(&tls_url, Some(&tls.ca)));
    run_until_caught_up(&config);
    let (pg, connection) = tokio_postgres::connect(&server.socket_url(), tokio_postgres::NoTls)
        .await
        .expect("connect over the socket");
    tokio::spawn(connection);
    let expected = common::scan(&client, &table).await;
    assert!(!expected.is_empty());
    assert_eq!(live(&pg, "public", &table).await, expected);
}
