#!/usr/bin/env python3
"""The usual alternative, written the usual way: a Lambda-style DynamoDB
Streams consumer in Python (boto3's streams client and TypeDeserializer,
Python's sqlite3), used as the honest baseline for the engine.

For every shard (parents first, as DescribeStream lists them) it reads from
TRIM_HORIZON with GetRecords (Limit 1000) and applies each page in one
transaction, as one Lambda invocation would: INSERT/MODIFY upsert the new
image as JSON, REMOVE deletes the row. It stops when every shard returned an
empty page. Prints the records it applied.

    baseline_consumer.py --endpoint URL --table NAME --db replica.db
"""

import argparse
import json
import sqlite3
from decimal import Decimal

import boto3
from boto3.dynamodb.types import TypeDeserializer


def to_json(value):
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(to_json(v) for v in value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if hasattr(value, "value"):  # boto3 Binary
        return bytes(value.value).hex()
    raise TypeError(type(value))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()

    session = boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    )
    dynamodb = session.client("dynamodb", endpoint_url=args.endpoint)
    streams = session.client("dynamodbstreams", endpoint_url=args.endpoint)
    stream_arn = dynamodb.describe_table(TableName=args.table)["Table"]["LatestStreamArn"]

    db = sqlite3.connect(args.db)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS items (pk TEXT, sk TEXT, item TEXT, PRIMARY KEY (pk, sk))"
    )
    deserializer = TypeDeserializer()

    shards = []
    start = None
    while True:
        kwargs = {"StreamArn": stream_arn}
        if start:
            kwargs["ExclusiveStartShardId"] = start
        description = streams.describe_stream(**kwargs)["StreamDescription"]
        shards.extend(description["Shards"])
        start = description.get("LastEvaluatedShardId")
        if not start:
            break

    applied = 0
    for shard in shards:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records = page["Records"]
            if not records:
                break
            with db:  # one transaction per page, like one invocation
                for record in records:
                    change = record["dynamodb"]
                    keys = {k: deserializer.deserialize(v) for k, v in change["Keys"].items()}
                    pk, sk = str(keys["pk"]), str(keys["sk"])
                    if record["eventName"] == "REMOVE":
                        db.execute("DELETE FROM items WHERE pk = ? AND sk = ?", (pk, sk))
                    else:
                        image = {
                            k: deserializer.deserialize(v) for k, v in change["NewImage"].items()
                        }
                        db.execute(
                            "INSERT OR REPLACE INTO items VALUES (?, ?, ?)",
                            (pk, sk, json.dumps(image, default=to_json)),
                        )
                    applied += 1
            iterator = page.get("NextShardIterator")
    print(f"baseline applied {applied} records")


if __name__ == "__main__":
    main()
