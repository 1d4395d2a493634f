//! Against DynamoDB Local and a Kafka-protocol broker (tansu), read back by
//! an independent consumer (confluent-kafka): the last record per key equals
//! a Scan of the table through SIGKILLs, deleted items end with a
//! tombstone; a record larger than the producer may send is dead-lettered
//! and the shard moves on; a one-minute broker outage (a proxy that cuts
//! and refuses connections) is ridden out by the same process, losing
//! nothing, with `/readyz` naming the sink meanwhile.

use crate::common;

use std::time::Duration;

use common::engine::{run_until_caught_up, spawn, write_config};
use common::kafka;
use common::kafka_compare::{self, assert_topic_equals, topic_difference};

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
    kafka_compare::check_a_record_too_large("kafka_big", "", |topic| {
        kafka::read_topic(topic, "read_committed")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_process_recovers_from_a_broker_outage() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The engine reaches the broker only through the proxy, which the
    // broker advertises as its address.
    let (proxy, _broker, bootstrap) = kafka::proxied_broker(dir.path()).await;
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
