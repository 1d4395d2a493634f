#!/usr/bin/env python3
"""Materialises a file of Debezium change events with Apache Flink's
`debezium-json` format (PyFlink, one local mini-cluster, parallelism 1) and
prints the final table: the integration tests' real Debezium consumer (see
tests/kafka_flink.rs).

usage: flink_debezium.py FILE SPEC

FILE holds one Debezium envelope per line, in the order a consumer reads
them. SPEC is a JSON document naming the source table's columns and key:

    {"columns": [["pk", "STRING"], ["sk", "STRING"], ["n", "DECIMAL(38, 0)"], ...],
     "key": ["pk", "sk"]}

The script declares a filesystem-connector table over FILE with those Flink
SQL types, `format = 'debezium-json'` and `PRIMARY KEY (key) NOT ENFORCED`,
and runs two streaming jobs over it (a batch job cannot read a changelog
source):

- `SELECT * FROM t`, whose changelog (+I, -U, +U, -D rows, as Flink's
  format turns `c`/`r`, `u` and `d` events into them) is applied in order to
  a map by key, as Flink's SQL client materialises a changelog result. Every
  retraction (-U, -D) must remove exactly the row the map holds for its key
  (so each `before` image is the previous `after`), +I and +U must not find a
  row already there;
- `SELECT COUNT(*) FROM t`, Flink's own aggregate over the same changelog;
  its final value is printed as `count`.

Output (stdout), one JSON document:

    {"flink": "2.3.0", "rows": [[value, ...], ...], "changes": {"+I": 3, ...},
     "count": 2}

Each row lists its columns in SPEC's order: ROW values as lists of their
fields, ARRAY as lists, MAP as objects, BYTES as standard base64, DECIMAL as
Python's `str` of the decimal (e.g. `10.50`, `1E-38`), STRING and BOOLEAN as
they are, SQL NULL as null. A changelog that does not apply ends the script
with a message on stderr and exit status 1.
"""
import base64
import json
import sys
from decimal import Decimal


def plain(value):
    """A value that PyFlink returned, as JSON-ready data (see the docstring)."""
    from pyflink.common import Row

    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Row):
        return [plain(v) for v in value]
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    raise TypeError(f"unexpected value from Flink: {value!r}")


def decode_nested_nulls():
    """Makes PyFlink's collect() decode a SQL NULL nested in a ROW, ARRAY or
    MAP value. PyFlink (2.3.0) sends every field of a result row as pickled
    bytes, a NULL as no bytes; its decoder treats empty bytes as None for a
    row's own fields but unpickles them inside a nested value, which fails
    with `EOFError: Ran out of input` (e.g. ROW<a STRING, b STRING> holding
    ('x', NULL)). The same rule for every level reads them as None."""
    import pyflink.table.table_result as table_result
    import pyflink.table.utils as utils

    original = utils.pickled_bytes_to_python_converter

    def converter(data, field_type):
        if isinstance(data, (bytes, bytearray)) and len(data) == 0:
            return None
        return original(data, field_type)

    # The recursion inside `original` looks the name up in `utils`.
    utils.pickled_bytes_to_python_converter = converter
    table_result.pickled_bytes_to_python_converter = converter


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, spec = sys.argv[1], json.loads(sys.argv[2])
    columns, key = spec["columns"], spec["key"]

    from pyflink.table import EnvironmentSettings, TableEnvironment
    from pyflink.common import RowKind
    import pyflink.version

    decode_nested_nulls()
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("parallelism.default", "1")

    def quote(name):
        return "`" + name.replace("`", "``") + "`"

    fields = ",\n  ".join(f"{quote(name)} {ty}" for name, ty in columns)
    primary = ", ".join(quote(name) for name in key)
    env.execute_sql(
        f"""CREATE TABLE t (
  {fields},
  PRIMARY KEY ({primary}) NOT ENFORCED
) WITH (
  'connector' = 'filesystem',
  'path' = '{path.replace("'", "''")}',
  'format' = 'debezium-json',
  'debezium-json.ignore-parse-errors' = 'false'
)"""
    )

    names = [name for name, _ in columns]
    key_at = [names.index(name) for name in key]
    table = {}
    changes = {}
    pending_update = None
    with env.execute_sql("SELECT * FROM t").collect() as results:
        for position, row in enumerate(results):
            kind = row.get_row_kind()
            label = {
                RowKind.INSERT: "+I",
                RowKind.UPDATE_BEFORE: "-U",
                RowKind.UPDATE_AFTER: "+U",
                RowKind.DELETE: "-D",
            }[kind]
            changes[label] = changes.get(label, 0) + 1
            values = plain(list(row))
            row_key = json.dumps([values[i] for i in key_at])
            held = table.get(row_key)

            def fail(why):
                sys.exit(
                    f"change {position} ({label} {json.dumps(values)}): {why}; "
                    f"the table held {json.dumps(held)}"
                )

            if kind in (RowKind.UPDATE_BEFORE, RowKind.DELETE):
                if held != values:
                    fail("the retracted row is not the row held for its key")
                del table[row_key]
                pending_update = row_key if kind == RowKind.UPDATE_BEFORE else None
            else:
                if held is not None:
                    fail("a row is already held for its key")
                if kind == RowKind.UPDATE_AFTER and pending_update != row_key:
                    fail("+U without the -U of the same key before it")
                table[row_key] = values
                pending_update = None

    count = None
    with env.execute_sql("SELECT COUNT(*) FROM t").collect() as results:
        for row in results:
            if row.get_row_kind() in (RowKind.INSERT, RowKind.UPDATE_AFTER):
                count = row[0]
            elif row.get_row_kind() == RowKind.DELETE:
                count = 0  # the aggregate retracts its row when no input row is left

    json.dump(
        {
            "flink": pyflink.version.__version__,
            "rows": list(table.values()),
            "changes": changes,
            "count": count,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
