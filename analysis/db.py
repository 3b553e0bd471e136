"""DuckDB over a results store: the views ``trials``, ``dims``, ``curves`` and ``points``.

Each view reads every Parquet file of its table (per-trial and compacted) and is completed by the
schema module's typed empty table, so every documented column exists with its type even over an
empty store or files written before a column was added. Object stores are read through the same
fsspec file system the writers use (``register_filesystem``): no DuckDB extension is downloaded.

The views show each trial exactly once (see ``isosweep.schema``): the trials row that finished
last, and the other tables' rows of that row's ``run_id``, taken from a single file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import duckdb
import pyarrow as pa

from isosweep.errors import UsageError, first_line
from isosweep.schema import TABLES
from isosweep.store import Store


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


def _lock_down(con: duckdb.DuckDBPyConnection, store: Store) -> None:
    """Confine the connection to reading the store: no file outside the store's folder can be
    read or written, no extension installed or loaded, and no setting changed afterwards."""
    root = os.path.abspath(store.root) if store.local else store.uri(store.root)
    con.execute(f"SET allowed_directories = [{_quote(root.rstrip('/') + '/')}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET lock_configuration = true")


def connect(store_url: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per store table, locked down to reading the
    store's files (:func:`_lock_down`)."""
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
    _lock_down(con, store)
    return con


READ_ONLY_HINT = "write one SELECT over the views trials, dims, curves, points (save a result with --format and --out)"


def check_read_only(sql: str) -> None:
    """Raise UsageError unless ``sql`` is exactly one SELECT-type statement (SELECT, WITH, FROM,
    VALUES, DESCRIBE, SHOW, SUMMARIZE), as DuckDB's own parser classifies it.

    Statements that write files or change the database (COPY, EXPORT, ATTACH, INSTALL, LOAD,
    CREATE, INSERT, UPDATE, DELETE, DROP, PRAGMA, SET, CALL, EXPLAIN ANALYZE of any of these, ...)
    are refused here; reads of files outside the store are refused by the connection itself.
    """
    statements = duckdb.extract_statements(sql)
    if not statements:
        raise UsageError(f"the query is empty; {READ_ONLY_HINT}")
    if len(statements) > 1:
        raise UsageError(f"the query holds {len(statements)} statements; isosweep query runs one: {READ_ONLY_HINT}")
    kind = statements[0].type
    if kind == duckdb.StatementType.MULTI:
        raise UsageError("isosweep query is read-only and refuses statements that create objects, such as a PIVOT "
                         "without an IN list; name the pivot's values (PIVOT ... ON col IN (v1, v2) USING ...)")
    if kind != duckdb.StatementType.SELECT:
        raise UsageError(f"isosweep query is read-only and refuses {kind.name} statements; {READ_ONLY_HINT}")


_DENIED_FILE = re.compile(r'Cannot access (?:file|directory) "([^"]*)"')


def _denied(exc: duckdb.Error) -> str:
    match = _DENIED_FILE.search(str(exc))
    return f"{match.group(1)} is outside it" if match else first_line(exc)


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
    check_read_only(sql)
    last: Optional[duckdb.Error] = None
    for _ in range(3):
        try:
            con = connect(store_url)
            if as_arrow:
                table = con.sql(sql, params=params).to_arrow_table()
                return QueryResult(table.column_names, [], table)
            cur = con.execute(sql, params) if params is not None else con.execute(sql)
            if cur.description is None:
                return QueryResult([], [])
            columns = [d[0] for d in cur.description]
            return QueryResult(columns, cur.fetchall())
        except duckdb.PermissionException as exc:
            raise UsageError(f"isosweep query reads only the files of store {store_url!r}: "
                             f"{_denied(exc)}; {READ_ONLY_HINT}") from None
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
