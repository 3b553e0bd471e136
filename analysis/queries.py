"""Named summary queries: SQL kept in ``analysis/sql/<name>.sql``, runnable as ``isosweep query @name``.

Besides the store's views (``trials``, ``dims``, ``curves``, ``points``), every query (named or
not) may read the views made from the study registry (``isosweep.studies``; :data:`REGISTRY_TABLES`,
defined on each connection by ``isosweep.analysis.db.connect``), so that no study's name or grid is
written in the SQL and a newly registered study is summarised like the others:

- ``studies``: one row per registered study: ``plan`` (its registry name), ``study`` (the name
  its trials are recorded as: the same, except for a study that picks points of another) and
  ``summary`` (its summary query). A query selects the trials it summarises with
  ``study IN (SELECT study FROM studies WHERE summary = '<its summary query>')``.
- ``planned``: one row per grid point that a study plans at each budget (seeds aside), with the
  registry's settings (:data:`PLANNED_COLUMNS`); ``plan = study`` are a study's own grid points.
- ``paper_points``: the paper's (lambda1, lambda2) of each anomaly data set.
- ``anomaly_trials``: the trials of the studies summarised by ``anomaly_summary``, with ``settings``:
  ``default``, or the recorded settings in which a trial differs from its study's plan at its budget
  (``scaling=train_half, epochs=8000``; :data:`isosweep.studies.ANOMALY_SETTINGS`). The tables of
  the paper's protocol read ``settings = 'default'``; ``@anomaly_ablation`` compares the others.
  ``training_settings`` is the same label without the snapshot rule: the queries of the snapshots'
  curves (``@anomaly_selection``, ``@anomaly_snapshots``) read ``anomaly_runs``: one trial per seed
  with ``training_settings = 'default'``.

A query's own common table expression of one of these names takes its place in that query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from isosweep.studies import ANOMALY_PAPER_POINT, ANOMALY_SETTINGS, STUDIES

PLANNED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("plan", "VARCHAR"),
    ("study", "VARCHAR"),
    ("budget", "VARCHAR"),
    ("dataset", "VARCHAR"),
    ("loss", "VARCHAR"),
    ("form", "VARCHAR"),
    ("lam", "DOUBLE"),
    ("lam1", "DOUBLE"),
    ("lam2", "DOUBLE"),
    ("latent_dim", "INTEGER"),
    ("reduction", "VARCHAR"),
    ("lr_schedule", "VARCHAR"),
)
"""Columns of ``planned``: the fields that tell one grid point of a study from another."""

_NAME = re.compile(r"[A-Za-z0-9_]+")
"""What a named query's name may be: the stem of a file in ``analysis/sql/``."""


def query_names() -> list[str]:
    return sorted(
        p.name[:-4] for p in resources.files("isosweep.analysis").joinpath("sql").iterdir() if p.name.endswith(".sql")
    )


def named_query(name: str) -> str:
    """The SQL of the named query; KeyError naming the known ones otherwise."""
    # A name, never a path: `@/any/file` or `@../x` must not run a .sql file from elsewhere.
    path = resources.files("isosweep.analysis").joinpath("sql").joinpath(f"{name}.sql")
    if not _NAME.fullmatch(name) or not path.is_file():
        raise KeyError(f"unknown named query @{name}; known: {', '.join('@' + n for n in query_names())}")
    return path.read_text()


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, float):
        return repr(value)
    return str(int(value))


def _values_sql(columns: Sequence[tuple[str, str]], rows: Sequence[tuple[Any, ...]]) -> str:
    """A SELECT of ``rows`` with typed ``columns`` (an empty one where there are no rows)."""
    names = ", ".join(name for name, _ in columns)
    casts = ", ".join(f"{name}::{kind} AS {name}" for name, kind in columns)
    if not rows:
        return f"SELECT {casts} FROM (SELECT {', '.join(f'NULL AS {name}' for name, _ in columns)}) WHERE FALSE"
    values = ",\n        ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
    return f"SELECT {casts} FROM (VALUES\n        {values}\n    ) AS v({names})"


def planned_rows() -> list[tuple[Any, ...]]:
    """Every grid point of every registered study at every budget, as ``PLANNED_COLUMNS`` tuples."""
    rows: dict[tuple[Any, ...], None] = {}
    for study in STUDIES.values():
        if study.needs_user_data:
            continue  # its grid points are known only from the user's data file
        for budget in study.budgets:
            for config in study.configs(budget, seeds=1):
                key = (study.name, *(getattr(config, name) for name, _ in PLANNED_COLUMNS[1:]))
                rows[key] = None
    return list(rows)


STUDIES_COLUMNS: tuple[tuple[str, str], ...] = (("plan", "VARCHAR"), ("study", "VARCHAR"), ("summary", "VARCHAR"))
PAPER_POINT_COLUMNS: tuple[tuple[str, str], ...] = (("dataset", "VARCHAR"), ("lam1", "DOUBLE"), ("lam2", "DOUBLE"))


def anomaly_trials_sql() -> str:
    """The ``anomaly_trials`` table: anomaly trials with their ``settings`` label, which names each
    recorded setting (``isosweep.studies.ANOMALY_SETTINGS``) whose value differs from the one the
    trial's study plans at its budget for its data set (``default`` where none does)."""
    anomaly = [s for s in STUDIES.values() if s.summary == "anomaly_summary"]
    names = list(ANOMALY_SETTINGS)
    plan = sorted(
        {
            (study.records_as or study.name, budget, c.dataset, *(getattr(c, n) for n in names))
            for study in anomaly
            for budget in study.budgets
            for c in study.configs(budget, seeds=1)
        },
        key=repr,
    )
    columns = (
        ("study", "VARCHAR"),
        ("budget", "VARCHAR"),
        ("dataset", "VARCHAR"),
        *((n, "INTEGER" if ANOMALY_SETTINGS[n] is int else "VARCHAR") for n in names),
    )

    # A null setting is its default, the first of its choices: named by that where the plan differs.
    def named(n: str) -> str:
        allowed = ANOMALY_SETTINGS[n]
        value = f"t.{n}" if allowed is int else f"coalesce(t.{n}, {_literal(allowed[0])})"  # type: ignore[index]
        return f"CASE WHEN t.{n} IS DISTINCT FROM p.{n} THEN '{n}=' || {value} END"

    def label(of: list[str]) -> str:
        return f"coalesce(nullif(concat_ws(', ', {', '.join(named(n) for n in of)}), ''), 'default')"

    # The snapshot rule only chooses which snapshot a trial keeps: trials that differ in it alone
    # train alike and record the same curves, so the queries of the curves read them as one.
    studies = ", ".join(_literal(s) for s in sorted({s.records_as or s.name for s in anomaly}))
    return f"""SELECT t.*, {label(names)} AS settings,
        {label([n for n in names if n != "snapshot_rule"])} AS training_settings
    FROM trials t LEFT JOIN ({_values_sql(columns, plan)}) p
        ON p.study = t.study AND p.budget = t.budget AND p.dataset = t.dataset
    WHERE t.study IN ({studies})"""


ANOMALY_RUNS_SQL = """SELECT * FROM anomaly_trials
    WHERE training_settings = 'default' AND status = 'ok'
    QUALIFY row_number() OVER (PARTITION BY study, budget, dataset, lam1, lam2, seed
                               ORDER BY settings <> 'default', settings) = 1"""
"""The ``anomaly_runs`` table: one finished trial per seed of each grid point trained as the plan
trains it. The snapshot rule changes nothing in training, so a seed's trials that differ in it
alone record the same snapshots: one of them counts (the planned rule's, if any), and a store of
trials run under another rule reads the same in the queries of the snapshots' curves."""


REGISTRY_TABLES: dict[str, Callable[[], str]] = {
    "studies": lambda: _values_sql(
        STUDIES_COLUMNS, [(s.name, s.records_as or s.name, s.summary) for s in STUDIES.values()]
    ),
    "planned": lambda: _values_sql(PLANNED_COLUMNS, planned_rows()),
    "paper_points": lambda: _values_sql(
        PAPER_POINT_COLUMNS, [(d, p["lam1"], p["lam2"]) for d, p in ANOMALY_PAPER_POINT.items()]
    ),
    "anomaly_trials": anomaly_trials_sql,
    "anomaly_runs": lambda: ANOMALY_RUNS_SQL,
}
"""The views every query may read besides the store's, each a SELECT built from the registry; a
view may read the store's views and those listed before it."""

_built: tuple[tuple[Any, ...], dict[str, str]] = ((), {})
"""The registry the views were last built from (its studies, held so that none is collected while
compared) and their SQL."""


def registry_views() -> dict[str, str]:
    """The SQL of :data:`REGISTRY_TABLES`, built once per state of the registry: a report opens a
    connection per query, and building the planned grid points takes tens of milliseconds. A study
    registered or removed since (``isosweep.studies.register_study``) builds them anew."""
    global _built
    studies = tuple(STUDIES.values())
    seen, views = _built
    if len(seen) != len(studies) or any(a is not b for a, b in zip(seen, studies)) or not views:
        views = {name: select() for name, select in REGISTRY_TABLES.items()}
        _built = (studies, views)
    return views
