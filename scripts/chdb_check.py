#!/usr/bin/env python3
"""Executes DDL and a TabSeparated insert in chdb (ClickHouse's current
engine, in-process) and prints the result of a query: proves that what the
clickhouse sink generates for modern servers runs on one.

usage: chdb_check.py DDL_FILE TABLE ROWS_FILE QUERY COLUMNS
  COLUMNS: the insert's column list, as the sink sends it
"""
import sys

from chdb import session


def main() -> int:
    ddl_file, table, rows_file, query, columns = sys.argv[1:6]
    s = session.Session()
    database = table.split(".")[0]
    s.query(f"CREATE DATABASE IF NOT EXISTS {database}")
    with open(ddl_file, encoding="utf-8") as f:
        s.query(f.read())
    with open(rows_file, encoding="utf-8") as f:
        rows = f.read()
    s.query(f"INSERT INTO {table} ({columns}) FORMAT TabSeparated\n{rows}")
    print(s.query(query), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
