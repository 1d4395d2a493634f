"""Loads recorded DynamoDB Streams records (JSON Lines from gen_records) into
a Kinesis stream in the format of a table's Kinesis streaming destination:
no SequenceNumber, tableName, microsecond ApproximateCreationDateTime.

    python kinesis_load.py ENDPOINT STREAM RECORDS.jsonl TABLE
"""

import json
import sys
import time

import boto3


def kinesis_record(line, index, table):
    record = json.loads(line)
    change = record["dynamodb"]
    change.pop("SequenceNumber", None)
    change["ApproximateCreationDateTime"] = 1_732_881_600_000_000 + index
    change["ApproximateCreationDateTimePrecision"] = "MICROSECOND"
    record["tableName"] = table
    record["recordFormat"] = "application/json"
    keys = json.dumps(change["Keys"], sort_keys=True)
    return {"Data": json.dumps(record).encode(), "PartitionKey": keys}


def main():
    endpoint, stream, path, table = sys.argv[1:5]
    client = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    started = time.monotonic()
    batch, sent = [], 0
    with open(path) as lines:
        for index, line in enumerate(lines):
            batch.append(kinesis_record(line, index, table))
            if len(batch) == 500:
                sent += put(client, stream, batch)
                batch = []
    if batch:
        sent += put(client, stream, batch)
    took = time.monotonic() - started
    print(f"loaded {sent} records into {stream} in {took:.1f} s ({sent / took:.0f}/s)", file=sys.stderr)


def put(client, stream, batch):
    while batch:
        answer = client.put_records(StreamName=stream, Records=batch)
        failed = [r for r, result in zip(batch, answer["Records"]) if "ErrorCode" in result]
        if failed:
            time.sleep(0.1)
        batch = failed
    return 500


if __name__ == "__main__":
    main()
