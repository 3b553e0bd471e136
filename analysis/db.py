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
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import duckdb
import pyarrow as pa

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


@dataclass(frozen=True)
class QueryResult:
    """A query's whole result: its columns and rows, or the same as an Arrow table."""

    columns: list[str]
    rows: list[tuple]
    table: Optional[pa.Table] = None


def run_query(store_url: str, sql: str, params: Optional[Sequence[Any]] = None, as_arrow: bool = False) -> QueryResult:
    """Run ``sql`` over the store's views and fetch the whole result.

    A file removed while the query ran (a compaction merged it) makes DuckDB fail: the views are
    then built again from a fresh listing and the query retried. A damaged file is named, with
    how to repair the store.
    """
    last: Optional[duckdb.Error] = None
    for _ in range(3):
        try:
            con = connect(store_url)
            cur = con.execute(sql, params) if params is not None else con.execute(sql)
            if cur.description is None:
                return QueryResult([], [])
            columns = [d[0] for d in cur.description]
            if as_arrow:
                table = cur.fetch_arrow_table()
                return QueryResult(columns, [], table)
            return QueryResult(columns, cur.fetchall())
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:
            last = exc
            text = str(exc)
            if "No files found" in text or "No such file" in text or "not found" in text.lower():
                continue
            break
    assert last is not None
    match = _FILE_IN_ERROR.search(str(last))
    if match:
        raise UsageError(f"store file {match.group(1)} is unreadable (damaged or partial); delete it and run the "
                         "sweep again to recompute that trial (`isosweep status` lists the others)")
    raise last
