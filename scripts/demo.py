#!/usr/bin/env python3
"""Demo and checking tool for dynamo-cdc, against DynamoDB (Local or real).

Subcommands (each takes --endpoint URL --region R --table NAME):

  create-table                 table with pk (S) + sk (N), on-demand, stream NEW_AND_OLD_IMAGES
  workload --count N --seed S  deterministic mix of puts, updates, deletes and re-inserts
  scan-json                    every item as one DynamoDB-JSON line, sorted by key
  compare --sqlite PATH        checks dynamo-cdc's SQLite replica against a Scan of the table

Needs boto3 (scripts/lib/servers.sh: ensure_python_venv makes a venv with it).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sqlite3
import sys
import time
from collections import Counter
from decimal import Decimal, InvalidOperation
from typing import Any

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError:  # pragma: no cover - message for people running it by hand
    sys.exit("demo.py needs boto3: source scripts/lib/servers.sh; PY=$(ensure_python_venv); $PY scripts/demo.py ...")

BIG_NUMBER = "12345678901234567890123456789012345678"  # 38 digits, DynamoDB's maximum precision


# --------------------------------------------------------------------------- client


def make_client(args: argparse.Namespace):
    # DynamoDB Local accepts any credentials; keep whatever the caller has set.
    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or "local",
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or "local",
        aws_session_token=os.environ.get("AWS_SESSION_TOKEN") or None,
        region_name=args.region,
    )
    cfg = Config(retries={"max_attempts": 10, "mode": "standard"}, connect_timeout=5, read_timeout=30)
    return session.client("dynamodb", endpoint_url=args.endpoint, config=cfg)


def key_schema(client, table: str) -> list[tuple[str, str]]:
    """[(name, type)] of the table's key attributes, hash key first."""
    desc = client.describe_table(TableName=table)["Table"]
    types = {a["AttributeName"]: a["AttributeType"] for a in desc["AttributeDefinitions"]}
    keys = sorted(desc["KeySchema"], key=lambda k: 0 if k["KeyType"] == "HASH" else 1)
    return [(k["AttributeName"], types[k["AttributeName"]]) for k in keys]


def scan_all(client, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(page.get("Items", []))
    return items


def key_sort_value(av: dict[str, Any]):
    (t, v), = av.items()
    if t == "N":
        return Decimal(v)
    if t == "B":
        return bytes(v)
    return v


def sort_items(items: list[dict[str, Any]], keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda it: tuple(key_sort_value(it[name]) for name, _ in keys))


def to_json_value(v: Any) -> Any:
    """The low-level client's item with bytes as base64 text (JSON-printable)."""
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, dict):
        return {k: to_json_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_json_value(x) for x in v]
    return v


# --------------------------------------------------------------------------- create-table


def cmd_create_table(args: argparse.Namespace) -> int:
    client = make_client(args)
    try:
        client.create_table(
            TableName=args.table,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "N"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        created = True
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceInUseException":
            raise
        created = False
    client.get_waiter("table_exists").wait(TableName=args.table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    deadline = time.monotonic() + 120
    while True:
        desc = client.describe_table(TableName=args.table)["Table"]
        if desc["TableStatus"] == "ACTIVE":
            break
        if time.monotonic() > deadline:
            print(f"table {args.table} is still {desc['TableStatus']}", file=sys.stderr)
            return 1
        time.sleep(0.5)
    spec = desc.get("StreamSpecification") or {}
    stream = desc.get("LatestStreamArn", "-")
    if not spec.get("StreamEnabled"):
        print(f"warning: table {args.table} exists without a stream", file=sys.stderr)
    print(f"table {args.table}: {'created' if created else 'exists'}, ACTIVE, stream {spec.get('StreamViewType', 'none')} {stream}")
    return 0


# --------------------------------------------------------------------------- workload

STATUSES = ["new", "paid", "packed", "shipped", "delivered", "returned", "cancelled"]
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "ünïcødé", "日本語", "emoji 🚀", "tab\tnewline\n", "quote \" back\\slash"]


class Gen:
    """Deterministic generator of DynamoDB-JSON values."""

    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def small_decimal(self) -> str:
        r = self.r
        choice = r.randrange(6)
        if choice == 0:
            return str(r.randrange(-1000, 1000))
        if choice == 1:
            return f"{r.randrange(0, 100000) / 100:.2f}".rstrip("0").rstrip(".") or "0"
        if choice == 2:
            return f"-{r.randrange(1, 10000)}.{r.randrange(1, 10)}"
        if choice == 3:
            return "0.001"
        if choice == 4:
            return "-0.5"
        return str(r.randrange(1, 10**12))

    def string(self) -> str:
        r = self.r
        if r.random() < 0.15:
            return ""
        return " ".join(r.choice(WORDS) for _ in range(r.randrange(1, 4)))

    def blob(self, max_len: int = 24) -> bytes:
        return self.r.randbytes(self.r.randrange(1, max_len + 1))

    def string_set(self) -> list[str]:
        vals = {f"tag-{self.r.randrange(50)}" for _ in range(self.r.randrange(1, 5))}
        return sorted(vals)

    def number_set(self) -> list[str]:
        vals = {str(self.r.randrange(-100, 1000)) for _ in range(self.r.randrange(1, 5))}
        if self.r.random() < 0.3:
            vals.add("3.14")
        if self.r.random() < 0.2:
            vals.add(BIG_NUMBER)
        return sorted(vals)

    def binary_set(self) -> list[bytes]:
        vals = {self.blob(8) for _ in range(self.r.randrange(1, 4))}
        return sorted(vals)

    def lines(self) -> dict[str, Any]:
        r = self.r
        out: list[dict[str, Any]] = []
        for i in range(r.randrange(0, 4)):
            out.append({"M": {
                "sku": {"S": f"SKU-{r.randrange(10000):05d}"},
                "qty": {"N": str(r.randrange(1, 20))},
                "price": {"N": self.small_decimal()},
                "gift": {"BOOL": r.random() < 0.2},
            }})
        # Edge cases the spec asks for: an empty list and an empty map inside a list.
        out.append({"L": []})
        out.append({"M": {}})
        if r.random() < 0.5:
            out.append({"NULL": True})
            out.append({"L": [{"S": ""}, {"N": "-7"}, {"B": self.blob(4)}, {"SS": ["x", "y"]}]})
        return {"L": out}

    def meta(self, version: int) -> dict[str, Any]:
        r = self.r
        return {"M": {
            "source": {"S": r.choice(["web", "app", "api", ""])},
            "version": {"N": str(version)},
            "empty": {"M": {}},
            "nested": {"M": {
                "deeper": {"M": {"empty": {"M": {}}, "flag": {"BOOL": r.random() < 0.5}, "n": {"N": self.small_decimal()}}},
                "list": {"L": [{"M": {}}, {"L": []}, {"NULL": True}]},
            }},
            "ns": {"NS": self.number_set()},
        }}

    def item(self, pk: str, sk: str, version: int) -> dict[str, Any]:
        r = self.r
        item: dict[str, Any] = {
            "pk": {"S": pk},
            "sk": {"N": sk},
            "status": {"S": r.choice(STATUSES)},
            "note": {"S": self.string()},
            "empty_s": {"S": ""},
            "amount": {"N": self.small_decimal()},
            "big": {"N": r.choice([BIG_NUMBER, "-" + BIG_NUMBER, "9.9999999999999999999999999999999999999E+125", "1E-130"])},
            "count": {"N": str(r.randrange(-50, 50))},
            "blob": {"B": self.blob()},
            "paid": {"BOOL": r.random() < 0.5},
            "nothing": {"NULL": True},
            "tags": {"SS": self.string_set()},
            "scores": {"NS": self.number_set()},
            "blobs": {"BS": self.binary_set()},
            "lines": self.lines(),
            "empty_l": {"L": []},
            "meta": self.meta(version),
        }
        # Some items lack some attributes, so items differ in shape.
        for optional in ("note", "blobs", "scores", "nothing"):
            if r.random() < 0.15:
                del item[optional]
        return item

    def update(self, current: dict[str, Any], version: int) -> tuple[dict[str, Any], list[str]]:
        """(attributes to SET, attribute names to REMOVE) for an UpdateItem."""
        r = self.r
        fresh = self.item(current["pk"]["S"], current["sk"]["N"], version)
        candidates = [k for k in fresh if k not in ("pk", "sk")]
        sets = {k: fresh[k] for k in r.sample(candidates, r.randrange(1, 5))}
        sets["meta"] = fresh["meta"]  # carries the version, so each update changes the item
        removable = [k for k in current if k not in ("pk", "sk", "meta") and k not in sets]
        removes = r.sample(removable, min(len(removable), r.randrange(0, 3)))
        return sets, removes


def key_of(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": sk}}


def cmd_workload(args: argparse.Namespace) -> int:
    client = make_client(args)
    n_ops = args.count
    gen = Gen(args.seed)
    r = random.Random(args.seed ^ 0x5EED)

    n_keys = max(1, n_ops // 4)
    # Keys: 5 sort keys per partition key, with negative and decimal sort keys too.
    sk_values = ["1", "2", "-3", "10.5", "100"]
    all_keys = [(f"cust#{i // len(sk_values):04d}", sk_values[i % len(sk_values)]) for i in range(n_keys)]
    r.shuffle(all_keys)

    unused = list(all_keys)
    live: dict[tuple[str, str], dict[str, Any]] = {}
    deleted: list[tuple[str, str]] = []
    counts: Counter[str] = Counter()
    started = time.monotonic()

    for step in range(n_ops):
        version = step + 1
        remaining = n_ops - step
        # Selection sampling: exactly n_keys puts of new keys over the run.
        if unused and (not live and not deleted or r.random() < len(unused) / remaining):
            kind = "put"
        elif not live:
            kind = "reinsert" if deleted else "put"
        else:
            roll = r.random()
            if roll < 0.50:
                kind = "update"
            elif roll < 0.72:
                kind = "delete"
            elif roll < 0.87 and deleted:
                kind = "reinsert"
            else:
                kind = "overwrite"
        if kind == "put" and not unused:
            kind = "update" if live else "reinsert"

        if kind == "put":
            key = unused.pop()
            item = gen.item(key[0], key[1], version)
            client.put_item(TableName=args.table, Item=item)
            live[key] = item
        elif kind == "overwrite":
            key = r.choice(sorted(live))
            item = gen.item(key[0], key[1], version)
            client.put_item(TableName=args.table, Item=item)
            live[key] = item
        elif kind == "reinsert":
            key = deleted.pop(r.randrange(len(deleted)))
            if r.random() < 0.3:
                # Re-insert through UpdateItem (an upsert on a missing key).
                item = gen.item(key[0], key[1], version)
                sets = {k: v for k, v in item.items() if k not in ("pk", "sk")}
                update_item(client, args.table, key, sets, [])
                counts["reinsert_via_update"] += 1
            else:
                item = gen.item(key[0], key[1], version)
                client.put_item(TableName=args.table, Item=item)
            live[key] = item
        elif kind == "update":
            key = r.choice(sorted(live))
            sets, removes = gen.update(live[key], version)
            update_item(client, args.table, key, sets, removes)
            item = dict(live[key])
            item.update(sets)
            for name in removes:
                item.pop(name, None)
            live[key] = item
        elif kind == "delete":
            key = r.choice(sorted(live))
            client.delete_item(TableName=args.table, Key=key_of(*key))
            del live[key]
            deleted.append(key)
        counts[kind] += 1

    elapsed = time.monotonic() - started
    kinds = " ".join(f"{k}={counts[k]}" for k in ("put", "update", "overwrite", "delete", "reinsert") if counts[k])
    extra = f" (of which {counts['reinsert_via_update']} via UpdateItem)" if counts["reinsert_via_update"] else ""
    print(f"workload: {n_ops} ops on {args.table} [{kinds}]{extra}; {len(all_keys)} keys, "
          f"{len(live)} live items expected; {elapsed:.1f}s")
    return 0


def update_item(client, table: str, key: tuple[str, str], sets: dict[str, Any], removes: list[str]) -> None:
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    set_parts: list[str] = []
    for i, (name, value) in enumerate(sorted(sets.items())):
        names[f"#s{i}"] = name
        values[f":s{i}"] = value
        set_parts.append(f"#s{i} = :s{i}")
    remove_parts: list[str] = []
    for i, name in enumerate(sorted(removes)):
        names[f"#r{i}"] = name
        remove_parts.append(f"#r{i}")
    expr = ""
    if set_parts:
        expr += "SET " + ", ".join(set_parts)
    if remove_parts:
        expr += (" " if expr else "") + "REMOVE " + ", ".join(remove_parts)
    kwargs: dict[str, Any] = {
        "TableName": table,
        "Key": key_of(*key),
        "UpdateExpression": expr,
        "ExpressionAttributeNames": names,
    }
    if values:
        kwargs["ExpressionAttributeValues"] = values
    client.update_item(**kwargs)


# --------------------------------------------------------------------------- scan-json


def cmd_scan_json(args: argparse.Namespace) -> int:
    client = make_client(args)
    keys = key_schema(client, args.table)
    out = sys.stdout
    for item in sort_items(scan_all(client, args.table), keys):
        out.write(json.dumps(to_json_value(item), sort_keys=True, ensure_ascii=False) + "\n")
    return 0


# --------------------------------------------------------------------------- compare


class Mismatch(Exception):
    pass


def canon(av: Any, path: str) -> Any:
    """A comparable form of one attribute value (sets as frozensets, binary as bytes).

    Accepts the low-level client's form (bytes) and the replica's JSON form (base64 text).
    Numbers are compared by their exact text: DynamoDB returns them normalised, and the
    replica is to keep that text unchanged.
    """
    if not isinstance(av, dict) or len(av) != 1:
        if av == {}:
            raise Mismatch(f"{path}: bare {{}} where an attribute value such as {{\"M\": {{}}}} was expected")
        raise Mismatch(f"{path}: not an attribute value: {json.dumps(to_json_value(av))[:80]}")
    (t, v), = av.items()
    if t == "S":
        if not isinstance(v, str):
            raise Mismatch(f"{path}: S holds {type(v).__name__}")
        return ("S", v)
    if t == "N":
        if not isinstance(v, str):
            raise Mismatch(f"{path}: N must be a string, got {type(v).__name__} {v!r}")
        return ("N", v)
    if t == "B":
        return ("B", as_bytes(v, path))
    if t == "BOOL":
        if not isinstance(v, bool):
            raise Mismatch(f"{path}: BOOL holds {v!r}")
        return ("BOOL", v)
    if t == "NULL":
        if v is not True:
            raise Mismatch(f"{path}: NULL holds {v!r}")
        return ("NULL", True)
    if t == "SS":
        return ("SS", frozenset(v))
    if t == "NS":
        return ("NS", frozenset(v))
    if t == "BS":
        return ("BS", frozenset(as_bytes(x, path) for x in v))
    if t == "L":
        if not isinstance(v, list):
            raise Mismatch(f"{path}: L holds {type(v).__name__}")
        return ("L", tuple(canon(x, f"{path}[{i}]") for i, x in enumerate(v)))
    if t == "M":
        if not isinstance(v, dict):
            raise Mismatch(f"{path}: M holds {type(v).__name__}")
        return ("M", frozenset((k, canon(x, f"{path}.{k}")) for k, x in v.items()))
    raise Mismatch(f"{path}: unknown type tag {t!r}")


def as_bytes(v: Any, path: str) -> bytes:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, str):
        try:
            return base64.b64decode(v, validate=True)
        except ValueError as e:
            raise Mismatch(f"{path}: B is not valid base64: {v[:40]!r}") from e
    raise Mismatch(f"{path}: B holds {type(v).__name__}")


def diff_items(src: dict[str, Any], rep: dict[str, Any]) -> list[str]:
    """Differences between a source item (client form) and a replica item (JSON form)."""
    problems: list[str] = []
    for name in sorted(set(src) | set(rep)):
        if name not in rep:
            problems.append(f"{name}: missing in replica")
            continue
        if name not in src:
            problems.append(f"{name}: only in replica ({short(rep[name])})")
            continue
        try:
            a = canon(src[name], name)
        except Mismatch as e:  # would be a bug in this script
            problems.append(f"source value: {e}")
            continue
        try:
            b = canon(rep[name], name)
        except Mismatch as e:
            problems.append(str(e))
            continue
        if a != b:
            hint = ""
            if a[0] == "N" and b[0] == "N":
                try:
                    if Decimal(a[1]) == Decimal(b[1]):
                        hint = " (numerically equal, text differs)"
                except InvalidOperation:
                    pass
            problems.append(f"{name}: table {short(src[name])} != replica {short(rep[name])}{hint}")
    return problems


def short(av: Any, width: int = 60) -> str:
    text = json.dumps(to_json_value(av), ensure_ascii=False, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def scalar_text(av: Any) -> str:
    if not isinstance(av, dict) or len(av) != 1:
        return "?"
    (t, v), = av.items()
    if t in ("S", "N"):
        return v if v != "" else '""'
    if t == "BOOL":
        return "true" if v else "false"
    if t == "NULL":
        return "null"
    return f"<{t}>"


def key_text(av: dict[str, Any]) -> str:
    (t, v), = av.items()
    if t == "B":
        return base64.b64encode(bytes(v)).decode("ascii")
    return str(v)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def cmd_compare(args: argparse.Namespace) -> int:
    if not os.path.exists(args.sqlite):
        print(f"no replica at {args.sqlite}", file=sys.stderr)
        return 1
    client = make_client(args)
    keys = key_schema(client, args.table)
    key_names = [k for k, _ in keys]
    source = sort_items(scan_all(client, args.table), keys)

    problems: list[str] = []
    db = sqlite3.connect(f"file:{args.sqlite}?mode=ro", uri=True)
    objects = {name: kind for name, kind in db.execute("SELECT name, type FROM sqlite_master")}
    table, view = args.table, f"{args.table}_live"
    if objects.get(table) != "table":
        print(f"replica {args.sqlite} has no table {table!r} (has: {', '.join(sorted(objects)) or 'nothing'})", file=sys.stderr)
        return 1
    columns = [row[1] for row in db.execute(f"PRAGMA table_info({quote_ident(table)})")]
    missing_cols = [c for c in key_names + ["_item", "_version", "_deleted"] if c not in columns]
    if missing_cols:
        print(f"replica table {table!r} lacks columns {missing_cols} (has {columns})", file=sys.stderr)
        return 1

    if objects.get(view) == "view":
        live_from = quote_ident(view)
    else:
        problems.append(f"replica has no view {view!r}; read {table!r} WHERE _deleted = 0 instead")
        live_from = f"{quote_ident(table)} WHERE _deleted = 0"
    key_cols = ", ".join(quote_ident(k) for k in key_names)
    live_rows = db.execute(f"SELECT {key_cols}, _item, _version FROM {live_from}").fetchall()

    # Contract checks on all rows: _deleted is 0/1, deleted rows carry no item.
    for row in db.execute(f"SELECT {key_cols}, _deleted, _item IS NULL FROM {quote_ident(table)}"):
        k = "/".join(str(x) for x in row[: len(key_names)])
        flag, item_null = row[len(key_names)], row[len(key_names) + 1]
        if flag not in (0, 1):
            problems.append(f"row {k}: _deleted is {flag!r}, expected 0 or 1")
        elif flag == 1 and not item_null:
            problems.append(f"row {k}: deleted row still has an _item")
        elif flag == 0 and item_null:
            problems.append(f"row {k}: live row has no _item")
    n_deleted = db.execute(f"SELECT count(*) FROM {quote_ident(table)} WHERE _deleted = 1").fetchone()[0]

    replica: dict[tuple[str, ...], dict[str, Any] | None] = {}
    for row in live_rows:
        k = tuple(str(x) for x in row[: len(key_names)])
        raw, version = row[len(key_names)], row[len(key_names) + 1]
        if k in replica:
            problems.append(f"{'/'.join(k)}: key appears more than once in {view}")
        if version is None or version == "":
            problems.append(f"{'/'.join(k)}: _version is empty")
        try:
            item = json.loads(raw) if raw is not None else None
        except (TypeError, json.JSONDecodeError) as e:
            problems.append(f"{'/'.join(k)}: _item is not JSON: {e}")
            item = None
        if item is not None and not isinstance(item, dict):
            problems.append(f"{'/'.join(k)}: _item is not a JSON object")
            item = None
        replica[k] = item

    # Side-by-side table of the first items, then the full comparison.
    shown_attrs = pick_shown_attrs(source, key_names)
    header = key_names + [f"{a} (table | replica)" for a in shown_attrs] + ["attrs", "result"]
    table_rows: list[list[str]] = []
    n_ok = 0
    source_keys = set()
    for item in source:
        k = tuple(key_text(item[name]) for name in key_names)
        source_keys.add(k)
        rep = replica.get(k)
        if k not in replica:
            diffs = ["missing in replica"]
        elif rep is None:
            diffs = ["replica _item unreadable"]
        else:
            diffs = diff_items(item, rep)
            for name, col in zip(key_names, k):
                if name in rep and isinstance(rep[name], dict) and key_text_json(rep[name]) != col:
                    diffs.append(f"key column {name}={col!r} but _item has {short(rep[name])}")
        if diffs:
            problems.extend(f"{'/'.join(k)}: {d}" for d in diffs)
        else:
            n_ok += 1
        if len(table_rows) < 10:
            cells = list(k)
            for a in shown_attrs:
                left = scalar_text(item[a]) if a in item else "-"
                right = scalar_text(rep[a]) if rep and a in rep else "-"
                cells.append(f"{trim(left)} | {trim(right)}")
            cells.append(f"{len(item)} | {len(rep) if rep else '-'}")
            cells.append("ok" if not diffs else "DIFF")
            table_rows.append(cells)
    for k in sorted(set(replica) - source_keys):
        problems.append(f"{'/'.join(k)}: live in replica but not in the table")

    print_table(header, table_rows)
    if len(source) > len(table_rows):
        print(f"... and {len(source) - len(table_rows)} more items")
    print(f"table: {len(source)} items; replica: {len(replica)} live rows, {n_deleted} deleted rows")
    if problems:
        print(f"replica DIFFERS from table: {len(problems)} difference(s), {n_ok}/{len(source)} items equal")
        for p in problems[: args.max_diffs]:
            print(f"  - {p}")
        if len(problems) > args.max_diffs:
            print(f"  ... and {len(problems) - args.max_diffs} more")
        return 1
    print(f"replica matches table: {len(source)} items")
    return 0


def key_text_json(av: dict[str, Any]) -> str:
    (_t, v), = av.items()
    return str(v)


def trim(s: str, width: int = 18) -> str:
    s = s.replace("\n", "\\n").replace("\t", "\\t")
    return s if len(s) <= width else s[: width - 1] + "…"


def pick_shown_attrs(items: list[dict[str, Any]], key_names: list[str], n: int = 2) -> list[str]:
    preferred = ["status", "amount"]
    present = set()
    for it in items[:10]:
        present.update(k for k, v in it.items() if k not in key_names and next(iter(v)) in ("S", "N", "BOOL"))
    chosen = [a for a in preferred if a in present]
    chosen += [a for a in sorted(present) if a not in chosen]
    return chosen[:n]


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), help="DynamoDB endpoint URL")
    common.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    common.add_argument("--table", required=True)

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("create-table", parents=[common], help="create the demo table (stream enabled)").set_defaults(fn=cmd_create_table)
    w = sub.add_parser("workload", parents=[common], help="write a deterministic mixed workload")
    w.add_argument("--count", type=int, default=2000)
    w.add_argument("--seed", type=int, default=1)
    w.set_defaults(fn=cmd_workload)
    sub.add_parser("scan-json", parents=[common], help="print every item as DynamoDB JSON, sorted by key").set_defaults(fn=cmd_scan_json)
    c = sub.add_parser("compare", parents=[common], help="compare dynamo-cdc's SQLite replica with the table")
    c.add_argument("--sqlite", required=True)
    c.add_argument("--max-diffs", type=int, default=50)
    c.set_defaults(fn=cmd_compare)

    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except ClientError as e:
        err = e.response.get("Error", {})
        print(f"error: {e.operation_name}: {err.get('Code')}: {err.get('Message')}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(1)
