"""DuckDB over a results store: the views ``trials``, ``dims``, ``curves`` and ``points``.

Each view reads every Parquet file of its table (per-trial and compacted) and is completed by the
schema module's typed empty table, so every documented column exists with its type even over an
empty store or files written before a column was added. Object stores are read through the same
fsspec file system the writers use (``register_filesystem``): no DuckDB extension is downloaded.
"""

from __future__ import annotations

import duckdb

from orchestrator.schema import TABLES
from orchestrator.store import Store


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(store_url: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per store table."""
    store = Store(store_url)
    con = duckdb.connect(":memory:")
    if not store.local:
        con.register_filesystem(store.fs)
    for table, schema in TABLES.items():
        empty = f"__empty_{table}"
        con.register(empty, schema.empty_table())
        if store.table_files(table):
            pattern = store.uri(f"{store.table_dir(table)}/*/*.parquet")
            source = (f"SELECT * FROM read_parquet({_quote(pattern)}, union_by_name = true, hive_partitioning = false) "
                      f"UNION ALL BY NAME SELECT * FROM {empty}")
        else:
            source = f"SELECT * FROM {empty}"
        con.execute(f"CREATE VIEW {table} AS {source}")
    return con
