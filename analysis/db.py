"""DuckDB over a results store: the views ``trials``, ``dims``, ``curves`` and ``points``, and
beside them the views made from the study registry (``studies``, ``planned``, ``paper_points``,
``anomaly_trials``, ``anomaly_runs``: ``isosweep.analysis.queries.REGISTRY_TABLES``, built once per
state of the registry by ``registry_views``).

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
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import duckdb
import pyarrow as pa

from isosweep.analysis.queries import registry_views
from isosweep.errors import UsageError, first_line
from isosweep.interrupts import deferred_interrupt
from isosweep.schema import TABLES
from isosweep.store import IDENTITY, Store, glob_escape


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _raw_source(store: Store, table: str) -> str:
    """All rows of a table's files with their file name, typed by the schema.

    The files are found by DuckDB's glob of the store's layout (``*/*.parquet``) below the
    store's path with its glob characters escaped, so a store named ``s*`` reads only itself."""
    empty = f"__empty_{table}"
    if not store.table_files(table):
        return f"SELECT *, NULL::VARCHAR AS __file FROM {empty}"
    pattern = f"{glob_escape(store.uri(store.table_dir(table)))}/*/*.parquet"
    # Rows without the identity columns (IDENTITY) come from a Parquet file that is not one of
    # the store's tables (union_by_name gives its rows nulls there): the store's readers count
    # such a file unreadable, and the views leave its rows out, so no count includes them.
    identity = " AND ".join(f'"{c}" IS NOT NULL' for c in IDENTITY)
    return (
        f"SELECT * FROM (SELECT * EXCLUDE (filename), filename AS __file FROM read_parquet({_quote(pattern)}, "
        f"union_by_name = true, hive_partitioning = false, filename = true) "
        f"UNION ALL BY NAME SELECT *, NULL::VARCHAR AS __file FROM {empty}) WHERE {identity}"
    )


def _columns(table: str) -> str:
    return ", ".join(f'"{c}"' for c in TABLES[table].names)


def _readable_roots(store: Store, given: str) -> list[str]:
    """The folders SQL may read: the store's table folders, each as the user wrote the store's
    path and as its real path (with symbolic links of the path resolved), and each of these once
    more with its glob characters escaped.

    DuckDB checks ``allowed_directories`` as string prefixes, both of the path a query names and
    of every file its glob expands to. The escaped form admits the views' patterns; the literal
    form admits what they expand to (the store's own files), and nothing a sibling's name could
    match, because an expansion into a sibling folder has that sibling's name as its prefix."""
    if store.local:
        bases = {os.path.abspath(given), store.root}
    else:
        bases = {store.uri(store.root)}
    roots: set[str] = set()
    for base in bases:
        for table in TABLES:
            folder = f"{base.rstrip('/')}/{table}/"
            roots.update({folder, glob_escape(folder)})
    return sorted(roots)


def _check_no_links(store: Store) -> None:
    """Refuse a local store with a symbolic link among its table folders: DuckDB follows links
    and checks only path strings, so a link inside the store would let SQL read (and its globs
    list) whatever the link points to."""
    for table in TABLES:
        links = store.links_below(store.table_dir(table))
        if links:
            rel = os.path.relpath(links[0], store.root)
            raise UsageError(
                f"store {store.url!r} holds a symbolic link, {rel}, which isosweep query does not follow "
                f"(it could lead outside the store); remove it, or copy what it points to into the store"
            )


def _lock_down(con: duckdb.DuckDBPyConnection, store: Store, given: str) -> None:
    """Confine the connection to reading the store: no file outside the store's table folders can
    be read or written, no temporary folder exists to read, no extension is installed or loaded,
    and no setting can be changed afterwards."""
    # No temporary directory at all: DuckDB's default, ``$PWD/.tmp``, is readable by SQL like an
    # allowed folder (and may be anything, e.g. a link to /). Without one, a query that needs more
    # memory than ``memory_limit`` fails (one line, exit 2) instead of spilling to disk.
    con.execute("SET temp_directory = ''")
    con.execute("SET enable_progress_bar = false")  # it would print into the query's output
    roots = ", ".join(_quote(r) for r in _readable_roots(store, given))
    con.execute(f"SET allowed_directories = [{roots}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET lock_configuration = true")


def _resolved(store_url: str) -> Store:
    """The store at ``store_url``; a local one at its real path (symbolic links of the path
    resolved), so that the folder names DuckDB checks are the ones it opens."""
    store = Store(store_url)
    return Store(os.path.realpath(store.root)) if store.local else store


def connect(store_url: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per store table, locked down to reading the
    store's table files (:func:`_lock_down`). UsageError for a local store with a symbolic link
    in its table folders (:func:`_check_no_links`)."""
    store = _resolved(store_url)
    _check_no_links(store)
    con = duckdb.connect(":memory:")
    if not store.local:
        con.register_filesystem(store.fs)
    for table, schema in TABLES.items():
        con.register(f"__empty_{table}", schema.empty_table())
    try:
        _create_views(con, store)
    except duckdb.Error as exc:
        # Binding the views reads every file's footer: a damaged one fails here, named in one line.
        con.close()
        damaged = unreadable_file_error(exc)
        if damaged is not None:
            raise damaged from None
        raise
    _lock_down(con, store, Store(store_url).root)
    return con


def _create_views(con: duckdb.DuckDBPyConnection, store: Store) -> None:
    """The views of the store's tables and of the study registry (module docstring)."""
    con.execute(f"""CREATE VIEW trials AS
        SELECT {_columns("trials")} FROM (
            SELECT *, row_number() OVER (PARTITION BY trial_key ORDER BY finished_at DESC NULLS LAST, run_id, __file) AS __pick
            FROM ({_raw_source(store, "trials")})
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
            SELECT {", ".join(f's."{c}"' for c in TABLES[table].names)}
            FROM src s JOIN chosen c ON s.trial_key = c.trial_key AND s.run_id IS NOT DISTINCT FROM c.run_id AND s.__file = c.__file""")
    for name, select in registry_views().items():  # in order: a view may read one made before it
        con.execute(f"CREATE VIEW {name} AS {select}")


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
        raise UsageError(
            "isosweep query is read-only and refuses statements that create objects, such as a PIVOT "
            "without an IN list; name the pivot's values (PIVOT ... ON col IN (v1, v2) USING ...)"
        )
    if kind != duckdb.StatementType.SELECT:
        raise UsageError(f"isosweep query is read-only and refuses {kind.name} statements; {READ_ONLY_HINT}")


_DENIED_FILE = re.compile(r'Cannot access (?:file|directory) "([^"]*)"')


def _denied(exc: duckdb.Error) -> str:
    match = _DENIED_FILE.search(str(exc))
    return f"{match.group(1)} is outside it" if match else first_line(exc)


_FILE_IN_ERROR = re.compile(r"""(?:file|File)\s+["']?([^"'\s]+\.parquet)""")


def vanished(exc: duckdb.Error) -> bool:
    """Whether DuckDB failed because a file it listed is gone (a compaction merged it meanwhile):
    building the views again from a fresh listing answers."""
    text = str(exc)
    return isinstance(exc, (duckdb.IOException, duckdb.InvalidInputException)) and (
        "No files found" in text or "No such file" in text or "not found" in text.lower()
    )


def unreadable_file_error(exc: duckdb.Error) -> UsageError | None:
    """The one line for a DuckDB error that names a store file it could not read (damaged,
    truncated, not Parquet), with the fix; None for any other error, and for a file that is only
    gone (``vanished``: read the store again)."""
    if not isinstance(exc, (duckdb.IOException, duckdb.InvalidInputException)) or vanished(exc):
        return None
    match = _FILE_IN_ERROR.search(str(exc))
    if match is None:
        return None
    return UsageError(
        f"store file {match.group(1)} is unreadable (damaged or partial); delete it and run the sweep "
        "again to recompute its trials (`isosweep status` lists every unreadable file)"
    )


@dataclass(frozen=True)
class QueryResult:
    """A query's whole result: its columns and rows, or the same as an Arrow table."""

    columns: list[str]
    rows: list[tuple]
    table: pa.Table | None = None


class _TimedOut(Exception):
    """The query ran past its time limit and was interrupted."""


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None, as_arrow: bool) -> QueryResult:
    if as_arrow:
        table = con.sql(sql, params=params).to_arrow_table()
        return QueryResult(table.column_names, [], table)
    cur = con.execute(sql, params) if params is not None else con.execute(sql)
    if cur.description is None:
        return QueryResult([], [])
    return QueryResult([d[0] for d in cur.description], cur.fetchall())


def _interrupt_until_done(con: duckdb.DuckDBPyConnection, done: threading.Event) -> None:
    """Interrupt the connection until the helper thread's work has ended. Interrupting a connection
    that is between statements (the query not started yet) does nothing, so one call could miss
    a query that starts just after it; that query would then run to its end."""
    con.interrupt()
    while not done.wait(0.1):
        con.interrupt()


def _bounded(
    con: duckdb.DuckDBPyConnection, work: Callable[[], QueryResult], deadline: float | None, stop: threading.Event
) -> QueryResult:
    """``work()`` (a query on ``con``) run in a helper thread while this one waits, so that both a
    deadline and Ctrl-C (``stop``, set by :func:`deferred_interrupt`) stop it: DuckDB runs a query
    without giving Python's signal handlers a turn, so a query run here directly would ignore
    Ctrl-C until it ended. Either one interrupts the connection (``con.interrupt()``) and waits for
    the query to stop; then _TimedOut or KeyboardInterrupt."""
    outcome: dict[str, Any] = {}
    # An Event, not Thread.join(timeout): a KeyboardInterrupt inside join() can leave the thread
    # looking finished while DuckDB still runs in it (seen with Python 3.11).
    done = threading.Event()

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # handed to the waiting thread, which raises it
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="isosweep-query", daemon=True).start()
    try:
        while not done.wait(0.1 if deadline is None else min(0.1, max(0.0, deadline - time.monotonic()))):
            if stop.is_set():
                raise KeyboardInterrupt
            if deadline is not None and time.monotonic() >= deadline:
                _interrupt_until_done(con, done)
                raise _TimedOut
    except KeyboardInterrupt:  # from ``stop``, or raised here where Ctrl-C could not be deferred
        _interrupt_until_done(con, done)
        raise
    if stop.is_set():
        raise KeyboardInterrupt
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def run_query(
    store_url: str, sql: str, params: Sequence[Any] | None = None, as_arrow: bool = False, timeout: float | None = None
) -> QueryResult:
    """Run ``sql`` over the store's views and fetch the whole result.

    A file removed while the query ran (a compaction merged it) makes DuckDB fail: the views are
    then built again from a fresh listing and the query retried. A damaged file is named, with
    how to repair the store. ``timeout``: seconds after which the query is stopped (UsageError);
    None for no limit. Ctrl-C stops the query too (KeyboardInterrupt).
    """
    check_read_only(sql)
    deadline = None if timeout is None else time.monotonic() + timeout
    last: duckdb.Error | None = None
    for _ in range(3):
        con: duckdb.DuckDBPyConnection | None = None
        try:
            # Ctrl-C is held back, then acted on where stopping is clean: see isosweep.interrupts.
            with deferred_interrupt() as stop:
                con = connect(store_url)  # builds the views, which read every file's schema
                if stop.is_set():
                    raise KeyboardInterrupt
                return _bounded(con, partial(_fetch, con, sql, params, as_arrow), deadline, stop)
        except _TimedOut:
            raise UsageError(
                f"the query ran longer than its limit of {timeout:g} s and was stopped; narrow it "
                "(a WHERE, a LIMIT) or allow more time with --timeout SECONDS"
            ) from None
        except duckdb.PermissionException as exc:
            raise UsageError(
                f"isosweep query reads only the files of store {store_url!r}: {_denied(exc)}; {READ_ONLY_HINT}"
            ) from None
        except duckdb.OutOfMemoryException as exc:
            raise UsageError(
                f"the query needs more memory than DuckDB may use ({first_line(exc)}); narrow it "
                "(a WHERE, fewer columns, a LIMIT)"
            ) from None
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:
            last = exc
            if vanished(exc):
                continue
            break
        finally:
            if con is not None:
                con.close()
    assert last is not None
    damaged = unreadable_file_error(last)
    if damaged is not None:
        raise damaged from None
    raise last
