#!/usr/bin/env python3
"""Fills fuzz/corpus/<target>/ with seed inputs, at fuzz time (the corpus is
not committed).

    seed.py CORPUS_DIR SOURCE...

Each SOURCE is a file or a folder of files: JSON, JSON Lines, or any text
holding JSON blocks (Markdown, reStructuredText), and TOML files or
Markdown with ```toml blocks for the configuration target. Every JSON
object found anywhere in them is classified: GetRecords pages and Lambda
events (a "Records" array), stream records (a "dynamodb" object), Lambda
Kinesis records (a "kinesis" object with "data"), images (a record's Keys,
NewImage, OldImage). Kinesis-format records and JSON Lines changes are
derived from the stream records."""

import base64
import hashlib
import json
import os
import re
import sys

TARGETS = ("decode_record", "record_decoder", "parse_page", "decode_image",
           "json_cursor", "event_line", "config", "kinesis")


def json_objects(text):
    """Every top-level JSON object in `text` (the whole text, lines, blocks)."""
    decoder = json.JSONDecoder()
    at = 0
    while True:
        at = text.find("{", at)
        if at < 0:
            return
        try:
            value, end = decoder.raw_decode(text, at)
        except ValueError:
            at += 1
            continue
        if isinstance(value, dict):
            yield value
        at = end


def walk(value):
    """Every object nested in `value`, itself included."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def kinesis_format(record):
    """A stream record as the Kinesis streaming destination writes it."""
    stream = dict(record.get("dynamodb") or {})
    stream.pop("SequenceNumber", None)
    seconds = stream.get("ApproximateCreationDateTime")
    if isinstance(seconds, (int, float)):
        stream["ApproximateCreationDateTime"] = int(seconds * 1000)
    out = {k: v for k, v in record.items() if k != "dynamodb"}
    out.update({"tableName": "orders", "recordFormat": "application/json",
                "dynamodb": stream})
    return out


def event_line(record):
    """A stream record as the jsonl sink writes it (best effort)."""
    stream = record.get("dynamodb") or {}
    line = {"table": "orders", "op": str(record.get("eventName", "")).lower(),
            "keys": stream.get("Keys", {})}
    for field, name in (("NewImage", "new_image"), ("OldImage", "old_image")):
        if field in stream:
            line[name] = stream[field]
    line["position"] = {"shard": "shardId-1",
                        "sequence": str(stream.get("SequenceNumber", "1"))}
    seconds = stream.get("ApproximateCreationDateTime")
    if isinstance(seconds, (int, float)):
        line["approx_time_ms"] = int(seconds * 1000)
    line.update({"ttl_delete": False, "event_id": str(record.get("eventID", "")),
                 "size_bytes": stream.get("SizeBytes", 0)})
    return line


def main():
    corpus, sources = sys.argv[1], sys.argv[2:]
    seeds = {target: set() for target in TARGETS}

    def add(target, text):
        if text:
            seeds[target].add(text if isinstance(text, bytes) else text.encode())

    files = []
    for source in sources:
        if os.path.isdir(source):
            files += sorted(os.path.join(source, n) for n in os.listdir(source))
        elif os.path.isfile(source):
            files.append(source)
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        if path.endswith(".toml"):
            add("config", text)
        for block in re.findall(r"```toml\n(.*?)```", text, re.S):
            add("config", block)
        for top in json_objects(text):
            for obj in walk(top):
                if isinstance(obj.get("Records"), list):
                    add("parse_page", compact(obj))
                    add("parse_page", json.dumps(obj, indent=2))
                    lines = "\n".join(compact(r) for r in obj["Records"])
                    add("record_decoder", lines)
                if isinstance(obj.get("dynamodb"), dict) and "eventName" in obj:
                    raw = compact(obj)
                    add("decode_record", raw)
                    add("decode_record", json.dumps(obj, indent=1))
                    add("record_decoder", raw)
                    kinesis = compact(kinesis_format(obj))
                    add("kinesis", kinesis)
                    add("record_decoder", kinesis)
                    add("record_decoder", raw + "\n" + kinesis)
                    add("event_line", compact(event_line(obj)))
                    for field in ("Keys", "NewImage", "OldImage"):
                        image = obj["dynamodb"].get(field)
                        if isinstance(image, dict):
                            add("decode_image", compact(image))
                            add("json_cursor", compact(image))
                if isinstance(obj.get("kinesis"), dict) and "data" in obj["kinesis"]:
                    add("record_decoder", compact(obj))
                    try:
                        add("kinesis", base64.b64decode(obj["kinesis"]["data"]))
                    except ValueError:
                        pass
    for target, texts in seeds.items():
        folder = os.path.join(corpus, target)
        os.makedirs(folder, exist_ok=True)
        for data in texts:
            name = hashlib.sha1(data).hexdigest()
            with open(os.path.join(folder, name), "wb") as handle:
                handle.write(data)
        print(f"{target}: {len(texts)} seeds")


if __name__ == "__main__":
    main()
