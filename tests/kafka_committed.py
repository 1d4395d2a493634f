#!/usr/bin/env python3
"""Reads a whole Kafka topic as a read_committed consumer of a real Kafka
broker would see it, without trusting the broker's read_committed: it
fetches the raw record batches with isolation_level=read_uncommitted
(kafka-python's protocol classes and record batch decoder) and applies the
transaction rules itself from the control batches in the log. The
integration tests' check that a transactional writer's aborted or unfinished
work stays invisible (see tests/common/kafka.rs).

Why: tansu (the test broker) answers every Fetch with an empty
aborted-transaction index, so its read_committed consumers also receive the
records of aborted transactions (tests/kafka_read.py shows them). It does
write COMMIT/ABORT control batches into each partition a transaction wrote,
which is all a consumer needs.

usage: kafka_committed.py BROKERS TOPIC [--timeout SECONDS]

The rules, per partition, in offset order:
  - a record of a non-transactional batch is delivered;
  - a record of a transactional batch is held until the next control batch
    of the same producer id in that partition: a COMMIT marker delivers the
    held records, an ABORT marker drops them;
  - records still held at the end (a transaction without a marker yet) are
    not delivered: they are listed under "open";
  - control batches are never delivered; their markers are counted.

Output (stdout), records sorted by (partition, offset):

    {"records": [{"partition": 0, "offset": 0, "key": "k" or null,
                  "value": "v" or null, "headers": {"name": "value"}}, ...],
     "aborted": 3,
     "open": [records of open transactions, same shape],
     "control": {"commit": 2, "abort": 1}}

"aborted" counts the records dropped by ABORT markers; "control" counts the
markers (one per control record). Keys, values and header values are
decoded as UTF-8 like tests/kafka_read.py does. Bytes that are not UTF-8, a
header without a value or repeated in one record, a batch with a bad CRC,
an unknown topic, a partition error or the timeout end the script with a
message on stderr and exit status 1.

How the end is found: every partition is fetched from its log start offset
again and again; the read stops once a round of fetches brought no new batch
and none has come for QUIET_SECONDS. It never stops at the partitions'
high watermarks: tansu can report a wrong one after batched writes.
"""
import argparse
import collections
import json
import logging
import sys
import time
from typing import NoReturn

import kafka.errors as Errors
from kafka import KafkaClient
from kafka.protocol.fetch import FetchRequest
from kafka.protocol.list_offsets import ListOffsetsRequest
from kafka.protocol.metadata import MetadataRequest
from kafka.record import MemoryRecords

# After a round of fetches brought nothing new, keep fetching this long for
# stragglers (any new batch starts the quiet period again).
QUIET_SECONDS = 1.0
# How long the broker may hold an empty fetch, and how much one returns.
FETCH_WAIT_MS = 100
PARTITION_MAX_BYTES = 8 * 1024 * 1024
# ListOffsets timestamp for "the log start offset".
EARLIEST = -2

# Protocol versions: Fetch v4 is the first with isolation_level and record
# batches (message format v2); ListOffsets v1 returns one offset; Metadata
# v4 can ask the broker not to create the topic.
FETCH = FetchRequest[4]
LIST_OFFSETS = ListOffsetsRequest[1]
METADATA = MetadataRequest[4]
READ_UNCOMMITTED = 0

# kafka-python's last log lines: kept out of stderr unless the read fails.
RECENT_LOGS = collections.deque(maxlen=5)


class _Recent(logging.Handler):
    def emit(self, record):
        RECENT_LOGS.append(self.format(record))


def capture_client_logs() -> None:
    logger = logging.getLogger("kafka")
    logger.propagate = False
    logger.addHandler(_Recent())
    logger.setLevel(logging.WARNING)


def fail(message: str) -> NoReturn:
    print(f"kafka_committed.py: {message}", file=sys.stderr)
    if RECENT_LOGS:
        print("last kafka-python log lines:", file=sys.stderr)
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


def record(partition: int, rec) -> dict:
    where = f"partition {partition} offset {rec.offset}"
    headers = {}
    for name, value in rec.headers or []:
        if name in headers:
            fail(f"header {name!r} appears twice at {where}")
        if value is None:
            fail(f"header {name!r} has no value at {where}")
        headers[name] = text(value, f"header {name!r} at {where}")
    return {
        "partition": partition,
        "offset": rec.offset,
        "key": text(rec.key, f"key at {where}"),
        "value": text(rec.value, f"value at {where}"),
        "headers": headers,
    }


def error_name(code: int) -> str:
    return Errors.for_code(code).__name__


class Reader:
    """One connection pool (kafka-python's KafkaClient) to the cluster."""

    def __init__(self, brokers: str, deadline: float):
        self.deadline = deadline
        try:
            self.client = KafkaClient(
                bootstrap_servers=brokers,
                client_id="kafka-committed",
                request_timeout_ms=10000,
            )
        except Errors.KafkaError as e:
            fail(f"cannot connect to {brokers}: {e!r}")

    def remaining_ms(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))

    def request(self, node_id, request, what: str):
        """Sends `request` to `node_id` and waits for the answer."""
        last = None
        while time.time() < self.deadline:
            try:
                if not self.client.await_ready(node_id, timeout_ms=min(5000, self.remaining_ms())):
                    last = f"node {node_id} not ready"
                    continue
                return self.client.send_and_receive(node_id, request)
            except Errors.KafkaError as e:
                if not getattr(e, "retriable", False):
                    fail(f"{what}: {e!r}")
                last = e
                time.sleep(0.1)
        fail(f"{what}: timed out ({last})")

    def leaders(self, topic: str) -> dict:
        """{partition: leader node id}, from metadata (retried until the deadline)."""
        last = None
        while time.time() < self.deadline:
            node = self.client.least_loaded_node()
            if node is None:
                last = "no broker to ask"
                self.client.poll(timeout_ms=100)
                continue
            answer = self.request(
                node, METADATA(topics=[topic], allow_auto_topic_creation=False), "metadata"
            )
            self.client.cluster.update_metadata(answer)
            entry = next((t for t in answer.topics if t[1] == topic), None)
            if entry is None:
                last = "not in the metadata answer"
            else:
                code, _, _, partitions = entry
                if code == Errors.UnknownTopicOrPartitionError.errno:
                    fail(f"topic {topic!r} does not exist")
                if code != 0:
                    last = error_name(code)
                elif not partitions:
                    last = "no partitions"
                elif all(p[2] >= 0 for p in partitions):
                    return {p[1]: p[2] for p in partitions}
                else:
                    last = "a partition has no leader"
            time.sleep(0.2)
        fail(f"no metadata for topic {topic!r}: {last}")

    def log_start(self, topic: str, leaders: dict) -> dict:
        """{partition: log start offset}."""
        starts = {}
        for node, partitions in by_node(leaders).items():
            request = LIST_OFFSETS(-1, [(topic, [(p, EARLIEST) for p in partitions])])
            answer = self.request(node, request, f"list offsets of {topic!r}")
            for _, entries in answer.topics:
                for partition, code, _, offset in entries:
                    if code != 0:
                        fail(f"list offsets of {topic!r} partition {partition}: {error_name(code)}")
                    starts[partition] = offset
        missing = sorted(set(leaders) - set(starts))
        if missing:
            fail(f"list offsets of {topic!r}: no answer for partitions {missing}")
        return starts

    def fetch(self, node, topic: str, positions: dict) -> dict:
        """{partition: record bytes} from `node`, read_uncommitted, from `positions`."""
        request = FETCH(
            -1,
            FETCH_WAIT_MS,
            0,
            len(positions) * PARTITION_MAX_BYTES,
            READ_UNCOMMITTED,
            [(topic, [(p, offset, PARTITION_MAX_BYTES) for p, offset in sorted(positions.items())])],
        )
        answer = self.request(node, request, f"fetch {topic!r}")
        data = {}
        for _, entries in answer.topics:
            for partition, code, _, _, _, records in entries:
                if code != 0:
                    fail(
                        f"fetch {topic!r} partition {partition} at offset "
                        f"{positions.get(partition)}: {error_name(code)}"
                    )
                data[partition] = records
        return data


def by_node(leaders: dict) -> dict:
    nodes = collections.defaultdict(list)
    for partition, node in sorted(leaders.items()):
        nodes[node].append(partition)
    return nodes


class Partition:
    """The read_committed state of one partition."""

    def __init__(self, number: int, start: int):
        self.number = number
        self.position = start
        self.delivered = []
        # producer id -> records of its transaction that has no marker yet
        self.held = collections.defaultdict(list)
        self.aborted = 0
        self.commits = 0
        self.aborts = 0

    def take(self, data: bytes) -> bool:
        """Applies the batches in `data` past the position; True when any was new."""
        new = False
        for batch in MemoryRecords(data):
            if batch.next_offset <= self.position:
                continue  # a fetch may start with a batch already seen
            if not batch.validate_crc():
                fail(f"partition {self.number}: batch at offset {batch.base_offset} has a bad CRC")
            new = True
            if batch.magic < 2:
                # Message formats v0/v1 have no transactions.
                self.deliver(r for r in batch if r.offset >= self.position)
            elif batch.is_control_batch:
                for marker in batch:
                    if marker.offset < self.position:
                        continue
                    self.end_transaction(batch.producer_id, marker)
            elif batch.is_transactional:
                self.held[batch.producer_id].extend(
                    record(self.number, r) for r in batch if r.offset >= self.position
                )
            else:
                self.deliver(r for r in batch if r.offset >= self.position)
            self.position = batch.next_offset
        return new

    def deliver(self, records) -> None:
        self.delivered.extend(record(self.number, r) for r in records)

    def end_transaction(self, producer_id: int, marker) -> None:
        held = self.held.pop(producer_id, [])
        if marker.commit:
            self.commits += 1
            self.delivered.extend(held)
        elif marker.abort:
            self.aborts += 1
            self.aborted += len(held)
        else:
            fail(
                f"partition {self.number} offset {marker.offset}: control record of "
                f"unknown type {marker.type}"
            )

    def open_records(self) -> list:
        return [r for records in self.held.values() for r in records]


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Print what a read_committed consumer sees of a Kafka topic, as JSON."
    )
    parser.add_argument("brokers", help="bootstrap servers, e.g. 127.0.0.1:9092")
    parser.add_argument("topic")
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="give up after this many seconds (default 60)",
    )
    args = parser.parse_args()
    capture_client_logs()

    deadline = time.time() + args.timeout
    reader = Reader(args.brokers, deadline)
    try:
        leaders = reader.leaders(args.topic)
        starts = reader.log_start(args.topic, leaders)
        partitions = {p: Partition(p, starts[p]) for p in leaders}
        last_new = time.time()
        while True:
            new = False
            for node, numbers in by_node(leaders).items():
                positions = {p: partitions[p].position for p in numbers}
                for p, data in reader.fetch(node, args.topic, positions).items():
                    if p in partitions and partitions[p].take(data):
                        new = True
            now = time.time()
            if new:
                last_new = now
            elif now - last_new >= QUIET_SECONDS:
                break
            if now >= deadline:
                fail(
                    f"timed out after {args.timeout:g} s reading {args.topic!r}: "
                    f"positions {[(p, partitions[p].position) for p in sorted(partitions)]}"
                )
    finally:
        reader.client.close()

    def ordered(records):
        return sorted(records, key=lambda r: (r["partition"], r["offset"]))

    ps = [partitions[p] for p in sorted(partitions)]
    json.dump(
        {
            "records": ordered(r for p in ps for r in p.delivered),
            "aborted": sum(p.aborted for p in ps),
            "open": ordered(r for p in ps for r in p.open_records()),
            "control": {
                "commit": sum(p.commits for p in ps),
                "abort": sum(p.aborts for p in ps),
            },
        },
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
