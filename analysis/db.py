"""DuckDB over a results store: the views ``trials``, ``dims``, ``curves`` and ``points``.

Each view reads every Parquet file of its table (per-trial and compacted) and is completed by the
schema module's typed empty table, so every documented column exists with its type even over an
empty store or files written before a column was added. Object stores are read through the same
fsspec file system the writers use (``register_filesystem``): no DuckDB extension is downloaded.

The views show each trial exactly once (see ``orchestrator.schema``): the trials row that finished
last, and the other tables' rows of that row's ``run_id``, taken from a single file.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Sequence

import duckdb

from orchestrator.errors import UsageError
from orchestrator.schema import TABLES
from orchestrator.store import Store


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _raw_source(store: Store, table: str) -> str:
    """All rows of a table's files with their file name, typed by the schema."""
    empty = f"__empty_{table}"
    if not store.table_files(table):
        return f"SELECT *, NULL::VARCHAR AS __file FROM {empty}"
    pattern = store.uri(f"{store.table_dir(table)}/*/*.parquet")
    return (f"SELECT * EXCLUDE (filename), filename AS __file FROM read_parquet({_quote(pattern)}, "
            f"union_by_name = true, hive_partitioning = false, filename = true) "
            f"UNION ALL BY NAME SELECT *, NULL::VARCHAR AS __file FROM {empty}")


def _columns(table: str) -> str:
    return ", ".join(f'"{c}"' for c in TABLES[table].names)


def connect(store_url: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per store table."""
    store = Store(store_url)
    con = duckdb.connect(":memory:")
    if not store.local:
        con.register_filesystem(store.fs)
    for table, schema in TABLES.items():
        con.register(f"__empty_{table}", schema.empty_table())
    con.execute(f"""CREATE VIEW trials AS
        SELECT {_columns('trials')} FROM (
            SELECT *, row_number() OVER (PARTITION BY trial_key ORDER BY finished_at DESC NULLS LAST, run_id, __file) AS __pick
            FROM ({_raw_source(store, 'trials')})
        ) WHERE __pick = 1""")
    for table in TABLES:
        if table == "trials":
            continue
        con.execute(f"""CREATE VIEW {table} AS
            WITH src AS ({_raw_source(store, table)}),
            chosen AS (
                SELECT s.trial_key, s.run_id, min(s.__file) AS __file
                FROM src s JOIN trials t ON s.trial_key = t.trial_key AND s.run_id IS NOT DISTINCT FROM t.run_id
                GROUP BY ALL
            )
            SELECT {', '.join(f's."{c}"' for c in TABLES[table].names)}
            FROM src s JOIN chosen c ON s.trial_key = c.trial_key AND s.run_id IS NOT DISTINCT FROM c.run_id AND s.__file = c.__file""")
    return con


_FILE_IN_ERROR = re.compile(r"""(?:file|File)\s+["']?([^"'\s]+\.parquet)""")


def run_query(store_url: str, sql: str, params: Optional[Sequence[Any]] = None) -> duckdb.DuckDBPyConnection:
    """Execute ``sql`` over the store's views; the cursor holds the result.

    A file removed while the query ran (a compaction merged it) makes DuckDB fail: the views are
    then built again from a fresh listing and the query retried. A damaged file is named, with
    how to repair the store.
    """
    last: Optional[duckdb.Error] = None
    for _ in range(3):
        con = connect(store_url)
        try:
            return con.execute(sql, params) if params is not None else con.execute(sql)
        except duckdb.IOException as exc:
            last = exc
            if "No files found" in str(exc) or "No such file" in str(exc) or "not found" in str(exc).lower():
                continue
            break
        except duckdb.InvalidInputException as exc:
            last = exc
            break
    assert last is not None
    match = _FILE_IN_ERROR.search(str(last))
    if match:
        raise UsageError(f"store file {match.group(1)} is unreadable (damaged or partial); delete it and run the "
                         "sweep again to recompute that trial (`isosweep status` lists the others)")
    raise last
