"""The Python API for notebooks: a store's views as DataFrames, SQL, and the report.

Every function takes the store as the CLI's ``--store`` does: a local folder or an fsspec URL
(``s3://bucket/prefix``). They read through the same locked-down DuckDB connection as
``isosweep query`` (:func:`isosweep.analysis.db.connect`), so nothing here can write to the store
or read a file outside it; only :func:`report` writes, and only its output folder.

This module is imported by ``import isosweep``, which every Ray worker runs before it imports
``isosweep.trainers``: so it imports only the standard library at module level, and DuckDB,
pandas, pyarrow and the analysis package inside the functions that need them.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from isosweep.errors import UsageError, first_line

if TYPE_CHECKING:  # for annotations only: importing these at run time would make `import isosweep` heavy
    import duckdb
    import pandas as pd

    from isosweep.store import Store

StoreLike = Union[str, "os.PathLike[str]"]
"""A store: a local folder (str or path) or an fsspec URL such as ``s3://bucket/prefix``."""

Params = Sequence[Any] | Mapping[str, Any]
"""Query parameters: a sequence for ``?`` placeholders, a mapping for ``$name`` ones."""

_IN_TYPES = (list, tuple, set, frozenset)
"""Filter values that mean ``column IN (...)``; any other value means ``column = value``."""

_ORDER = {
    "trials": ("trial_key",),
    "dims": ("trial_key", "dim"),
    "curves": ("trial_key", "step"),
    "points": ("trial_key",),
}
"""Row order of each table's DataFrame: the views have none, and a notebook wants a stable one."""

_SAME_IN_EVERY_TABLE = ("trial_key", "study", "run_id")
"""Columns every table has with the same value for a trial's rows."""


def _open(store: StoreLike) -> Store:
    """The store at ``store``, which must exist and be readable; UsageError otherwise.

    ``isosweep query`` answers a store that does not exist with empty views; here a mistyped path
    in a notebook would then look like a sweep that wrote nothing, so it is an error instead.
    """
    from isosweep.optional import require
    from isosweep.store import Store

    require("duckdb", "reading a store from Python")
    try:
        url = os.fspath(store)
    except TypeError:
        url = None
    if not isinstance(url, str) or not url:
        raise UsageError(f"store must be a folder path or an fsspec URL, got {store!r}")
    opened = Store(url)
    if not opened.local:
        # fsspec keeps an object store's listings for the life of its (cached) file system
        # object; a notebook outlives many sweeps, so every call lists the store afresh.
        opened.fs.invalidate_cache()
    opened.check_usable(for_writing=False)
    if opened.local:
        exists = os.path.isdir(os.path.abspath(opened.root))
    else:
        try:
            exists = opened.fs.isdir(opened.root)
        except Exception as exc:  # network, credentials, missing bucket
            raise UsageError(f"cannot reach store {url!r}: {type(exc).__name__}: {exc}") from None
    if not exists:
        raise UsageError(
            f"store {url!r} does not exist; pass the store a sweep wrote to "
            f"(`isosweep run STUDY --store {url}` writes one there)"
        )
    return opened


def connect(store: StoreLike) -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection over ``store`` with the views ``trials``, ``dims``,
    ``curves`` and ``points``: the connection ``isosweep query`` runs its SQL on.

    The connection reads only the store's files, loads no extension and cannot change its
    settings. It lists the store's files when it is made: connect again to see trials written
    since.

    >>> con = isosweep.connect("demo-results")
    >>> con.sql("select loss, avg(norm_active_mean) from trials group by loss").df()
    """
    from isosweep.analysis.db import connect as db_connect

    return db_connect(_open(store).url)


def _condition(column: str, value: Any, params: list[Any]) -> str:
    """One filter as SQL over a quoted, known ``column``; its values go to ``params``."""
    quoted = f'"{column}"'
    if value is None:
        return f"{quoted} IS NULL"
    if isinstance(value, _IN_TYPES):
        values = list(value)
        present = [v for v in values if v is not None]
        # `x IN (NULL)` is never true: a None in the list has to become its own IS NULL test.
        parts = []
        if present:
            parts.append(f"{quoted} IN ({', '.join('?' for _ in present)})")
            params.extend(present)
        if len(present) < len(values):
            parts.append(f"{quoted} IS NULL")
        return "(" + " OR ".join(parts) + ")" if parts else "FALSE"
    params.append(value)
    return f"{quoted} = ?"


def _unknown(caller: str, table: str, name: str, own: Sequence[str], joined: Sequence[str]) -> UsageError:
    known = list(own) + [c for c in joined if c not in own]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    text = f"{caller}: no column {name!r}{hint}; {table} has: {', '.join(own)}"
    if joined:
        text += f"; and through trial_key, trials has: {', '.join(c for c in joined if c not in own)}"
    return UsageError(text)


def _table_sql(
    table: str, filters: Mapping[str, Any], trial_filters: Mapping[str, Any] | None
) -> tuple[str, list[Any]]:
    """``SELECT * FROM table`` narrowed by ``filters``, with its parameters.

    A filter on one of the table's own columns applies to it; for dims, curves and points, one on
    a column only ``trials`` has (and every one in ``trial_filters``) keeps the rows whose trial
    matches it.
    """
    from isosweep.schema import TABLES

    own = TABLES[table].names
    joined = TABLES["trials"].names if table != "trials" else []
    params: list[Any] = []
    where: list[str] = []
    by_trial: dict[str, Any] = {}
    for name, value in filters.items():
        if name in own:
            where.append(_condition(name, value, params))
        elif name in joined:
            by_trial[name] = value
        else:
            raise _unknown(f"isosweep.{table}", table, name, own, joined)
    for name, value in (trial_filters or {}).items():
        if name not in joined:
            raise _unknown(f"isosweep.{table}, trial_filters", "trials", name, joined, [])
        by_trial[name] = value
    if by_trial:
        inner_params: list[Any] = []
        inner = " AND ".join(_condition(n, v, inner_params) for n, v in by_trial.items())
        where.append(f"trial_key IN (SELECT trial_key FROM trials WHERE {inner})")
        params.extend(inner_params)
    sql = f"SELECT * FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY " + ", ".join(f'"{c}"' for c in _ORDER[table])
    return sql, params


def _frame(url: str, sql: str, params: Params | None, hint: str = "") -> pd.DataFrame:
    """Run ``sql`` with the checks and retries of ``isosweep query``; the result as a DataFrame."""
    import duckdb

    from isosweep.analysis.db import run_query

    try:
        # Arrow keeps every column's type (timestamps with their zone, lists) into pandas.
        # (run_query hands params to DuckDB, which takes a mapping for $name placeholders too.)
        result = run_query(url, sql, params, as_arrow=True)  # type: ignore[arg-type]
    except duckdb.Error as exc:
        # An error raised in the file system (fsspec) arrives as a Python traceback, whose last
        # line names the exception; otherwise DuckDB's first line says what went wrong.
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        first = lines[-1] if lines and lines[0].startswith("Traceback") else first_line(exc)
        raise UsageError(f"query failed: {first}{hint}") from None
    assert result.table is not None
    return result.table.to_pandas()


def _table(
    table: str, store: StoreLike, filters: Mapping[str, Any], trial_filters: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    from isosweep.schema import TABLES

    url = _open(store).url
    sql, params = _table_sql(table, filters, trial_filters)
    hint = ""
    if filters or trial_filters:
        hint = (
            f" (check the filters' values against the columns' types: "
            f"{', '.join(f'{k}={v!r}' for k, v in {**filters, **(trial_filters or {})}.items())}"
        )
        # curves.loss is a number per epoch, trials.loss the loss's name: say which one was meant.
        shared = [
            k
            for k in filters
            if table != "trials"
            and k not in _SAME_IN_EVERY_TABLE
            and k in TABLES["trials"].names
            and k in TABLES[table].names
        ]
        if shared:
            hint += (
                f"; {', '.join(shared)} filtered {table}' own column(s): for the trials' column(s) "
                f"of that name pass trial_filters={{{', '.join(f'{k!r}: ...' for k in shared)}}}"
            )
        hint += ")"
    return _frame(url, sql, params, hint)


def trials(store: StoreLike, **filters: Any) -> pd.DataFrame:
    """The ``trials`` view, one row per trial (its newest record), as a DataFrame.

    Each keyword filters a column: ``column=value`` keeps equal rows, a list, tuple or set keeps
    rows whose value is in it, ``None`` keeps rows where the column is null. Values are bound as
    query parameters. Rows are ordered by ``trial_key``.

    >>> len(isosweep.trials("demo-results"))
    9
    >>> isosweep.trials("demo-results", dataset="mix", loss=["se", "uconv"], status="ok")
    >>> isosweep.trials("s3://my-bucket/isosweep", study="anomaly", error=None)

    Raises UsageError for a store that does not exist, a column ``trials`` lacks (the message
    lists its columns) or a value that does not fit its column.
    """
    return _table("trials", store, filters)


def dims(store: StoreLike, trial_filters: Mapping[str, Any] | None = None, **filters: Any) -> pd.DataFrame:
    """The ``dims`` view, one row per (trial, latent dimension), as a DataFrame.

    Filters as for :func:`trials`; a keyword may name a column of ``dims`` (``active=True``,
    ``rank=[1, 2]``) or of ``trials``, which keeps the dimensions of the matching trials.
    ``trial_filters`` names ``trials`` columns explicitly, for a name both tables have. Rows are
    ordered by ``trial_key`` and ``dim``.

    >>> isosweep.dims("demo-results", study="toy", lam=100.0, active=True)
    """
    return _table("dims", store, filters, trial_filters)


def curves(store: StoreLike, trial_filters: Mapping[str, Any] | None = None, **filters: Any) -> pd.DataFrame:
    """The ``curves`` view, one row per (trial, recorded epoch), as a DataFrame.

    Filters as for :func:`dims`. ``curves`` has columns of its own named ``loss``, ``recon``,
    ``kl``, ``val_loss``, ``val_f1`` and ``f1`` (values per epoch); a keyword of those names
    filters them, and ``trial_filters`` filters the trials' columns of the same names. Rows are
    ordered by ``trial_key`` and ``step``.

    >>> isosweep.curves("demo-results", dataset="mix", lam=100.0, trial_filters={"loss": "se"})
    """
    return _table("curves", store, filters, trial_filters)


def points(store: StoreLike, trial_filters: Mapping[str, Any] | None = None, **filters: Any) -> pd.DataFrame:
    """The ``points`` view, the per-sample density values (true and estimated log p(x)), as a
    DataFrame. Filters as for :func:`dims`; rows are ordered by ``trial_key``.

    >>> isosweep.points("demo-results", dataset="ramp", loss="uconv", lam=100.0)
    """
    return _table("points", store, filters, trial_filters)


def query(store: StoreLike, sql: str, params: Params | None = None) -> pd.DataFrame:
    """Run one read-only SQL statement over the store's views; the result as a DataFrame.

    The checks of ``isosweep query`` apply: exactly one SELECT-type statement (``SELECT``,
    ``WITH``, ``FROM``, ``VALUES``, ``DESCRIBE``, ``SUMMARIZE``, ...); anything that writes or
    changes the database raises UsageError, and so does reading a file outside the store.
    ``sql`` may be ``@name``, a named query of ``isosweep query @name``. ``params`` are bound to
    ``?`` (a sequence) or ``$name`` (a mapping) placeholders.

    >>> isosweep.query("demo-results", "select loss, count(*) n from trials where lam = ? group by loss", [100])
    >>> isosweep.query("demo-results", "@toy_summary")
    """
    url = _open(store).url
    if not isinstance(sql, str):
        raise UsageError(f"sql must be a string, got {type(sql).__name__}")
    if sql.startswith("@"):
        from isosweep.analysis.queries import named_query

        try:
            sql = named_query(sql[1:])
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
    return _frame(url, sql, params)


def report(study: str, store: StoreLike, out: StoreLike | None = None, budget: str | None = None) -> Path:
    """Write the report of ``study`` over ``store``, as ``isosweep report`` does, and return its
    folder (absolute).

    The folder (default ``report-STUDY`` in the current folder) gets ``report.md``, a
    self-contained ``report.html``, ``figures/*.png`` and ``tables/*.csv``. ``budget`` defaults
    to the largest budget with an ok trial. Bad input (``out`` inside the store, or where a report
    file would replace a link, a device or a folder) raises UsageError before anything is written.

    >>> folder = isosweep.report("toy", "demo-results", out="demo-report")
    >>> (folder / "report.html").exists()
    True
    """
    from isosweep.analysis.report import check_out_dir, default_out, make_report
    from isosweep.studies import get_study

    chosen = get_study(study)
    if budget is not None:
        chosen.budget(budget)
    opened = _open(store)
    folder = os.fspath(out) if out is not None else default_out(chosen.name)
    check_out_dir(folder, opened)  # never inside the store, as `isosweep report` refuses it too
    return make_report(opened.url, chosen.name, folder, budget).out
