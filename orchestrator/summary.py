"""A study's summary as a run prints it when it ends: its named query's rows at the run's
budget, without the columns that are the same in every row shown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from isosweep.analysis.db import run_query
from isosweep.analysis.formatting import as_table
from isosweep.analysis.queries import named_query
from isosweep.store import Store


def summary_table(
    store: Store, budget: str, name: str, match: dict[str, Any], limit: int | None = None, drop: Sequence[str] = ()
) -> str:
    """The named query's rows at ``budget`` that equal ``match`` in the columns it has, as a text
    table, leaving out the columns matched on and ``drop``."""
    sql = named_query(name)
    columns = set(run_query(store.url, f"SELECT * FROM ({sql}) LIMIT 0").columns)
    match = {column: value for column, value in {"budget": budget, **match}.items() if column in columns}
    exclude = ", ".join(f'"{c}"' for c in dict.fromkeys([*match, *drop]) if c in columns)
    where = " AND ".join(f'"{column}" = ?' for column in match) or "TRUE"
    tail = f" LIMIT {int(limit)}" if limit else ""
    selected = f"* EXCLUDE ({exclude})" if exclude else "*"
    result = run_query(store.url, f"SELECT {selected} FROM ({sql}) WHERE {where}{tail}", list(match.values()))
    return as_table(result.columns, result.rows)
