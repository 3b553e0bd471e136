"""Named summary queries: SQL kept in ``analysis/sql/<name>.sql``, runnable as ``isosweep query @name``.

Besides the store's views (``trials``, ``dims``, ``curves``, ``points``), a named query may read
``planned``: one row per grid point that the study registry plans at each budget (seeds aside),
with the registry's settings; ``plan`` names the registry's study, ``study`` the study its trials
are recorded as (the same, except for a study that picks points of another). :func:`named_query`
supplies it as a common table expression, so the grid has one definition (``isosweep.studies``)
and the SQL stays runnable by name.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

PLANNED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("plan", "VARCHAR"), ("study", "VARCHAR"), ("budget", "VARCHAR"), ("dataset", "VARCHAR"), ("loss", "VARCHAR"),
    ("form", "VARCHAR"), ("lam", "DOUBLE"), ("lam1", "DOUBLE"), ("lam2", "DOUBLE"),
    ("latent_dim", "INTEGER"), ("reduction", "VARCHAR"), ("lr_schedule", "VARCHAR"),
)
"""Columns of ``planned``: the fields that tell one grid point of a study from another."""

_USES_PLANNED = re.compile(r"\bplanned\b", re.IGNORECASE)
_LEADING_WITH = re.compile(r"\A((?:\s|--[^\n]*\n)*)WITH\b", re.IGNORECASE)


def query_names() -> list[str]:
    return sorted(p.name[:-4] for p in resources.files("isosweep.analysis").joinpath("sql").iterdir() if p.name.endswith(".sql"))


def named_query(name: str) -> str:
    """The SQL of the named query; KeyError naming the known ones otherwise."""
    path = resources.files("isosweep.analysis").joinpath("sql", f"{name}.sql")
    if not path.is_file():
        raise KeyError(f"unknown named query @{name}; known: {', '.join('@' + n for n in query_names())}")
    sql = path.read_text()
    return with_planned(sql) if _USES_PLANNED.search(_strip_comments(sql)) else sql


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, float):
        return repr(value)
    return str(int(value))


def planned_rows() -> list[tuple[Any, ...]]:
    """Every grid point of every registered study at every budget, as ``PLANNED_COLUMNS`` tuples."""
    from isosweep.studies import STUDIES

    rows: dict[tuple[Any, ...], None] = {}
    for study in STUDIES.values():
        if study.needs_user_data:
            continue  # its grid points are known only from the user's data file
        for budget in study.budgets:
            for config in study.configs(budget, seeds=1):
                rows[(study.name, *(getattr(config, name) for name, _ in PLANNED_COLUMNS[1:]))] = None
    return list(rows)


def planned_sql() -> str:
    """A SELECT that yields the ``planned`` table from the study registry."""
    names = ", ".join(name for name, _ in PLANNED_COLUMNS)
    casts = ", ".join(f"{name}::{kind} AS {name}" for name, kind in PLANNED_COLUMNS)
    values = ",\n        ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in planned_rows())
    return f"SELECT {casts} FROM (VALUES\n        {values}\n    ) AS v({names})"


def with_planned(sql: str) -> str:
    """``sql`` with ``planned`` defined as its first common table expression."""
    cte = f"planned AS (\n    {planned_sql()}\n)"
    match = _LEADING_WITH.match(sql)
    if match:
        return f"{match.group(1)}WITH {cte},{sql[match.end():]}"
    return f"WITH {cte}\n{sql}"
