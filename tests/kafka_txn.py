#!/usr/bin/env python3
"""Hand-made Kafka transactions for the tests of tests/kafka_committed.py
and of the broker's transactional offsets (tests/kafka_harness.rs), written
with confluent-kafka's transactional producer.

usage:
  kafka_txn.py create BROKERS TOPIC PARTITIONS
      creates TOPIC with PARTITIONS partitions (replication factor 1).
  kafka_txn.py run BROKERS TOPIC TXN_ID STEP...
      a producer with transactional.id TXN_ID calls init_transactions (which
      aborts a transaction that an earlier producer with that id left open),
      then runs the steps in order. Steps:
        plain:K=V[@P]   produce K=V with a separate non-transactional producer
                        (to partition P, default 0) and flush it
        begin           begin_transaction
        send:K=V[@P]    produce K=V in the transaction and flush it, so that it
                        is in the log before the next step
        offsets:GROUP:P:OFFSET:METADATA
                        send_offsets_to_transaction of TOPIC partition P at
                        OFFSET with the metadata string METADATA, for the
                        consumer group GROUP (group metadata of a consumer
                        with that group.id that never subscribed)
        commit          commit_transaction
        abort           abort_transaction
        ready           print "ready" on stdout and wait to be killed
      A value "-" is a tombstone (no value).
  kafka_txn.py committed BROKERS TOPIC GROUP PARTITIONS
      prints GROUP's committed offsets of TOPIC's partitions as JSON:
      {"0": {"offset": 5, "metadata": "m"}, "1": {"offset": null, "metadata": null}}

Any client error ends the script with a message on stderr and exit status 1.
"""
import json
import sys
import time
from typing import NoReturn

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT = 30


def fail(message: str) -> NoReturn:
    print(f"kafka_txn.py: {message}", file=sys.stderr)
    sys.exit(1)


def create(brokers: str, topic: str, partitions: str) -> None:
    admin = AdminClient({"bootstrap.servers": brokers})
    new = NewTopic(topic, num_partitions=int(partitions), replication_factor=1)
    admin.create_topics([new])[topic].result(timeout=TIMEOUT)


def key_value(spec: str):
    """`K=V[@P]` -> (key, value or None, partition)."""
    partition = 0
    if "@" in spec:
        spec, at = spec.rsplit("@", 1)
        partition = int(at)
    key, sep, value = spec.partition("=")
    if not sep:
        fail(f"{spec!r} is not K=V")
    return key, None if value == "-" else value, partition


def flush(producer: Producer, errors: list, what: str) -> None:
    if producer.flush(TIMEOUT) != 0:
        fail(f"{what}: flush timed out")
    if errors:
        fail(f"{what}: {errors}")


def run(brokers: str, topic: str, txn_id: str, steps) -> None:
    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(err)

    producer = Producer(
        {
            "bootstrap.servers": brokers,
            "transactional.id": txn_id,
            # Keep librdkafka from batching two steps' records together.
            "linger.ms": 0,
        }
    )
    plain = None
    producer.init_transactions(TIMEOUT)
    for step in steps:
        name, _, arg = step.partition(":")
        if name == "plain":
            if plain is None:
                plain = Producer({"bootstrap.servers": brokers, "linger.ms": 0})
            key, value, partition = key_value(arg)
            plain.produce(topic, key=key, value=value, partition=partition, on_delivery=delivered)
            flush(plain, errors, step)
        elif name == "begin":
            producer.begin_transaction()
        elif name == "send":
            key, value, partition = key_value(arg)
            producer.produce(topic, key=key, value=value, partition=partition, on_delivery=delivered)
            flush(producer, errors, step)
        elif name == "offsets":
            group, partition, offset, metadata = arg.split(":", 3)
            consumer = Consumer({"bootstrap.servers": brokers, "group.id": group})
            offsets = [TopicPartition(topic, int(partition), int(offset), metadata)]
            producer.send_offsets_to_transaction(
                offsets, consumer.consumer_group_metadata(), TIMEOUT
            )
            consumer.close()
        elif name == "commit":
            producer.commit_transaction(TIMEOUT)
        elif name == "abort":
            producer.abort_transaction(TIMEOUT)
        elif name == "ready":
            print("ready", flush=True)
            while True:
                time.sleep(3600)
        else:
            fail(f"unknown step {step!r}")


def committed(brokers: str, topic: str, group: str, partitions: str) -> None:
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group})
    asked = [TopicPartition(topic, p) for p in range(int(partitions))]
    answer = {}
    for tp in consumer.committed(asked, timeout=TIMEOUT):
        if tp.error is not None:
            fail(f"committed offset of {topic} partition {tp.partition}: {tp.error}")
        if tp.offset == OFFSET_INVALID:
            answer[str(tp.partition)] = {"offset": None, "metadata": None}
        else:
            answer[str(tp.partition)] = {"offset": tp.offset, "metadata": tp.metadata}
    consumer.close()
    json.dump(answer, sys.stdout)
    sys.stdout.write("\n")


def main() -> int:
    args = sys.argv[1:]
    commands = {"create": (create, 3), "committed": (committed, 4)}
    try:
        if args and args[0] == "run" and len(args) >= 4:
            run(args[1], args[2], args[3], args[4:])
        elif args and args[0] in commands and len(args) == commands[args[0]][1] + 1:
            commands[args[0]][0](*args[1:])
        else:
            fail("bad arguments; see the usage at the top of this script")
    except KafkaException as e:
        fail(f"{' '.join(args[:1])}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
