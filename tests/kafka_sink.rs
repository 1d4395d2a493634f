//! Against DynamoDB Local and a Kafka-protocol broker (tansu), read back by
//! an independent consumer (confluent-kafka): the last record per key equals
//! a Scan of the table through SIGKILLs, deleted items end with a
//! tombstone; a record larger than the producer may send is dead-lettered
//! and the shard moves on; a one-minute broker outage (a proxy that cuts
//! and refuses connections) is ridden out by the same process, losing
//! nothing, with `/readyz` naming the sink meanwhile.

mod common;

use std::time::Duration;

use common::engine::{dead_letters, run_until_caught_up, spawn, write_config};
use common::kafka;
use common::kafka_compare::{self, assert_topic_equals, topic_difference};
use common::tcp_proxy::TcpProxy;
use dynamo_cdc::model::{AttributeValue, Item};
use serde_json::Value;

fn kafka_sink(topic: &str, extra: &str) -> String {
    kafka_compare::sink_config(&kafka::brokers(), topic, extra)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_record_per_key_equals_the_table_through_kills() {
    let client = common::client().await;
    let table = common::unique_table("kafka");
    common::create_table(&client, &table).await;
    common::workload::run(&client, &table, 100, 400, 111, 4).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let topic = format!("{}.{{table}}", kafka::unique_topic_prefix("cdc"));
    let config = write_config(
        dir.path(),
        &[&table],
        "batch_size = 50",
        &kafka_sink(&topic, ""),
    );
    let topic = topic.replace("{table}", &table);
    for round in 0..2u64 {
        let log = dir.path().join(format!("engine-{round}.log"));
        let mut engine = spawn(&config, &log);
        let state = dir.path().join("state/checkpoints.db");
        common::wait_for("a checkpoint", Duration::from_secs(60), || state.exists());
        common::workload::run(&client, &table, 100, 200, 112 + round, 4).await;
        engine.kill().expect("SIGKILL");
        engine.wait().expect("reap");
    }
    common::workload::run(&client, &table, 100, 200, 115, 4).await;
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let items = common::scan(&client, &table).await;
    let records = kafka::read_topic(&topic, "read_committed");
    assert_topic_equals(&records, &items);
    // Deleted items end with a tombstone right after their delete record.
    let deletes: Vec<&kafka::Record> = records
        .iter()
        .filter(|r| r.headers.get("op").map(String::as_str) == Some("remove"))
        .collect();
    assert!(!deletes.is_empty(), "the workload deletes items");
    for delete in deletes {
        let next = records
            .iter()
            .find(|r| r.partition == delete.partition && r.offset > delete.offset)
            .expect("a record after the delete");
        assert_eq!(next.key, delete.key);
        assert_eq!(next.value, None, "a tombstone follows the delete");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_too_large_is_dead_lettered_and_the_shard_moves_on() {
    let client = common::client().await;
    let table = common::unique_table("kafka_big");
    common::create_table(&client, &table).await;
    let put = |pk: &str, size: usize| {
        let item = Item::from([
            ("pk".to_owned(), AttributeValue::S(pk.into())),
            (
                "sk".to_owned(),
                AttributeValue::N(dynamo_cdc::model::Number::parse("1").expect("n")),
            ),
            ("blob".to_owned(), AttributeValue::S("x".repeat(size))),
        ]);
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(common::values::to_sdk_item(&item)))
            .send()
    };
    put("small-1", 10).await.expect("put");
    put("big", 50_000).await.expect("put");
    put("small-2", 10).await.expect("put");
    let dir = tempfile::tempdir().expect("temp dir");
    let topic = format!("{}.{{table}}", kafka::unique_topic_prefix("big"));
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &kafka_sink(
            &topic,
            "envelope = \"plain\"\n[sinks.properties]\n\"message.max.bytes\" = \"20000\"",
        ),
    );
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("run");
    let records = kafka::read_topic(&topic.replace("{table}", &table), "read_committed");
    let keys: Vec<String> = records.iter().filter_map(|r| r.key.clone()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.contains("small")), "{keys:?}");
    let letters = dead_letters(dir.path(), &table);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["stage"], Value::from("sink:kafka"));
    let error = letters[0]["error"].as_str().expect("error");
    assert!(error.contains("too large"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_process_recovers_from_a_broker_outage() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The engine reaches the broker only through the proxy, which the
    // broker advertises as its address.
    let broker_port = common::observe::free_port();
    let proxy = TcpProxy::start(0, format!("127.0.0.1:{broker_port}")).await;
    let _broker = kafka::OwnBroker::start(broker_port, proxy.port(), &dir.path().join("tansu.log"));
    let bootstrap = format!("127.0.0.1:{}", proxy.port());
    let topic = format!("{}.{{table}}", kafka::unique_topic_prefix("down"));
    let sink = format!("{}unready_after = \"2s\"\n", kafka_sink(&topic, ""))
        .replace(&kafka::brokers(), &bootstrap);
    let mut run = common::outage::LiveRun::start("kafka_down", dir.path(), &sink).await;
    let topic = topic.replace("{table}", &run.table);
    let (bootstrap, topic) = (bootstrap.as_str(), topic.as_str());
    run.survive_outage(
        "kafka",
        |down| proxy.set_up(!down),
        |items| async move {
            // Reading a topic that does not exist yet fails.
            std::panic::catch_unwind(|| kafka::read_topic_from(bootstrap, topic, "read_committed"))
                .is_ok_and(|records| topic_difference(&records, &items).is_none())
        },
    )
    .await;
}
