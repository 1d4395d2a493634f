#!/usr/bin/env python3
"""The usual alternative fed the same recorded stream as `dynamo-cdc replay`:
a Lambda-style handler in Python (boto3's TypeDeserializer, and the usual
client library of the sink: clickhouse-driver or psycopg 3; clickhouse-connect
refuses the ClickHouse 18.16 server that installs here, so the native-protocol
client stands in for it).

The recorded file (one stream record per line, as examples/gen_records.rs
writes it) is cut into Lambda events of --batch records (the JSON parsing
that the Lambda runtime would do happens in this process too, and is
counted). Each event is one invocation:

  * clickhouse: one insert of (pk, sk, item JSON, version, is_deleted) rows
    into a ReplacingMergeTree(version), like the engine's `state` layout;
  * postgres: one transaction of versioned upserts (executemany), like the
    engine's versioned rows: a change applies when its version is newer.

Prints the records it applied.

    baseline_replay.py --input records.jsonl --sink clickhouse --url clickhouse://127.0.0.1:9000
    baseline_replay.py --input records.jsonl --sink postgres --url "host=127.0.0.1 port=5432 user=postgres"
"""

import argparse
import base64
import json
import urllib.parse

from boto3.dynamodb.types import TypeDeserializer

from baseline_consumer import to_json  # the same JSON form in both baselines


def with_bytes(value):
    """Lambda events carry binary as base64 text; TypeDeserializer wants bytes
    (boto3's streams client decodes it, a Lambda handler has to)."""
    (tag, inner), = value.items()
    if tag == "B":
        return {"B": base64.b64decode(inner)}
    if tag == "BS":
        return {"BS": [base64.b64decode(b) for b in inner]}
    if tag == "M":
        return {"M": {k: with_bytes(v) for k, v in inner.items()}}
    if tag == "L":
        return {"L": [with_bytes(v) for v in inner]}
    return value


def events(path, batch):
    """Lambda events of `batch` records each, as the runtime would hand them over."""
    records = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                records.append(json.loads(line))
            if len(records) == batch:
                yield {"Records": records}
                records = []
    if records:
        yield {"Records": records}


def changes(event, deserializer):
    """(pk, sk, item JSON or None, version) per record of one event."""
    for record in event["Records"]:
        change = record["dynamodb"]
        keys = {k: deserializer.deserialize(with_bytes(v)) for k, v in change["Keys"].items()}
        item = None
        if record["eventName"] != "REMOVE":
            image = {
                k: deserializer.deserialize(with_bytes(v)) for k, v in change["NewImage"].items()
            }
            item = json.dumps(image, default=to_json)
        yield str(keys["pk"]), str(keys["sk"]), item, int(change["SequenceNumber"])


def clickhouse_handler(url):
    import clickhouse_driver

    parts = urllib.parse.urlparse(url)
    client = clickhouse_driver.Client(host=parts.hostname, port=parts.port or 9000)
    client.execute("DROP TABLE IF EXISTS baseline_items")
    client.execute(
        "CREATE TABLE baseline_items (pk String, sk String, item String, "
        "version UInt64, is_deleted UInt8) "
        "ENGINE = ReplacingMergeTree(version) ORDER BY (pk, sk)"
    )
    deserializer = TypeDeserializer()

    def handle(event):
        rows = [
            (pk, sk, item or "", version, int(item is None))
            for pk, sk, item, version in changes(event, deserializer)
        ]
        client.execute(
            "INSERT INTO baseline_items (pk, sk, item, version, is_deleted) VALUES", rows
        )
        return len(rows)

    return handle


def postgres_handler(url):
    import psycopg

    connection = psycopg.connect(url, autocommit=True)
    connection.execute("DROP TABLE IF EXISTS baseline_items")
    connection.execute(
        "CREATE TABLE baseline_items (pk text, sk text, item jsonb, version numeric, "
        "deleted boolean, PRIMARY KEY (pk, sk))"
    )
    upsert = (
        "INSERT INTO baseline_items AS t VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (pk, sk) DO UPDATE SET item = EXCLUDED.item, "
        "version = EXCLUDED.version, deleted = EXCLUDED.deleted "
        "WHERE t.version <= EXCLUDED.version"
    )
    deserializer = TypeDeserializer()

    def handle(event):
        rows = [
            (pk, sk, item, version, item is None)
            for pk, sk, item, version in changes(event, deserializer)
        ]
        with connection.transaction():
            with connection.cursor() as cursor:
                cursor.executemany(upsert, rows)
        return len(rows)

    return handle


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--sink", choices=["clickhouse", "postgres"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--batch", type=int, default=1000, help="records per Lambda event")
    args = parser.parse_args()
    handle = (clickhouse_handler if args.sink == "clickhouse" else postgres_handler)(args.url)
    applied = sum(handle(event) for event in events(args.input, args.batch))
    print(f"baseline applied {applied} records")


if __name__ == "__main__":
    main()
