#!/usr/bin/env python3
"""Reads Parquet files with pyarrow and prints them as JSON: the integration
tests' independent reader of the `s3` sink's Parquet objects (see
tests/parquet_auto.rs), so that what the engine wrote is checked through a
library other than its own.

usage: parquet_read.py FILE...

Output (stdout), one JSON line per file, in the order given:

    {"file": "FILE", "types": {"column": "pyarrow type", ...},
     "rows": [{"column": value, ...}, ...]}

Decimals are printed as plain decimal strings (never through a float),
binary values as base64 and timestamps in ISO 8601. A file pyarrow cannot
read ends the script with a message on stderr and exit status 1.
"""

import base64
import datetime
import decimal
import json
import sys

import pyarrow.parquet as pq


def plain(value):
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    raise TypeError(f"cannot print {type(value).__name__} {value!r}")


def main(paths):
    for path in paths:
        try:
            table = pq.read_table(path)
        except Exception as error:  # pyarrow raises several kinds
            print(f"{path}: {error}", file=sys.stderr)
            return 1
        types = {field.name: str(field.type) for field in table.schema}
        line = {"file": path, "types": types, "rows": table.to_pylist()}
        print(json.dumps(line, default=plain))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
