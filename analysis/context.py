"""What a report section works from: the store's views, the study, the budget and its settings.

A section is a function ``(ReportContext) -> Section | None`` (None: it does not apply, e.g. its
trials do not exist). It reads summaries only through :meth:`ReportContext.summary`, i.e. through
the named queries of ``analysis/sql``, restricted to the report's study, budget and settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from isosweep.analysis.document import Section
from isosweep.analysis.queries import named_query
from isosweep.studies import Study

SELECTION_COLUMNS = ("plan", "study", "budget", "reduction", "lr_schedule")
"""Columns of the named queries that a report fixes (and so leaves out of its tables)."""


@dataclass
class ReportContext:
    """The report's connection and selection: one study, one budget, the study's settings."""

    con: duckdb.DuckDBPyConnection
    study: Study
    budget: str
    settings: dict[str, str]
    """Registry settings the trials must have (``reduction``, ``lr_schedule``)."""
    store_url: str
    _cache: dict[tuple[Any, ...], duckdb.DuckDBPyRelation] = field(default_factory=dict, repr=False)

    def selection(self, **overrides: Any) -> dict[str, Any]:
        """The report's filter values, with ``overrides`` (None drops a filter, others add one)."""
        values: dict[str, Any] = {
            "plan": self.study.name,
            "study": self.recorded_as,
            "budget": self.budget,
            **self.settings,
        }
        values.update(overrides)
        return {k: v for k, v in values.items() if v is not None}

    def summary(self, name: str, **overrides: Any) -> duckdb.DuckDBPyRelation:
        """The named query ``name`` restricted to this report's selection, computed once.

        The columns filtered on are left out of the result. ``overrides`` change the selection,
        e.g. ``study="toy-latent5"``, ``budget=None`` (every budget) or ``lam=100.0``.
        """
        filters = self.selection(**overrides)
        key = (name, tuple(sorted(filters.items(), key=lambda kv: kv[0])))
        if key not in self._cache:
            sql = named_query(name)
            columns = self.con.sql(sql).columns
            unknown = [c for c in filters if c not in columns and c not in SELECTION_COLUMNS]
            if unknown:
                raise KeyError(f"named query @{name} has no column {unknown[0]!r} to filter on")
            used = [(c, v) for c, v in filters.items() if c in columns]
            where = " AND ".join(f'"{c}" = ?' for c, _ in used) or "TRUE"
            exclude = f" EXCLUDE ({', '.join(c for c, _ in used)})" if used else ""
            table = f"__summary_{len(self._cache)}"
            self.con.execute(
                f"CREATE TEMP TABLE {table} AS SELECT *{exclude} FROM ({sql}) AS q WHERE {where}", [v for _, v in used]
            )
            self._cache[key] = self.con.table(table)
        return self._cache[key]

    def frame(self, name: str, **overrides: Any) -> pd.DataFrame:
        """:meth:`summary` as a DataFrame, sorted in the study's axis order."""
        return sort_frame(self.summary(name, **overrides).df(), self.study)

    @property
    def recorded_as(self) -> str:
        """The study name the trials carry (``records_as`` of a study that picks another's points)."""
        return self.study.records_as or self.study.name

    def axis_values(self, name: str) -> tuple[Any, ...]:
        """The values of the study's axis ``name`` at the report's budget; () if it has no such axis."""
        axis = self.study.axis(name)
        return self.study.axis_values(axis, self.budget) if axis is not None else ()


SectionFn = Callable[[ReportContext], Section | None]


def sort_frame(df: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Rows in the study's axis order (e.g. data sets norm, ramp, mix), then numeric order."""
    keys: list[str] = []
    orders: dict[str, dict[Any, int]] = {}  # a string axis's values in the study's order
    for column in ("dataset", "loss", "form", "lam", "lam1", "lam2", "latent_dim", "rank", "seed"):
        if column not in df.columns:
            continue
        keys.append(column)
        axis = study.axis(column)
        if axis is not None and axis.kind is str:
            orders[column] = {v: i for i, v in enumerate(axis.values)}
    if not keys or df.empty:
        return df.reset_index(drop=True)

    def key(series: pd.Series) -> pd.Series:
        order = orders.get(str(series.name))
        if order is None:
            return series
        return series.map(lambda value: (order.get(value, len(order)), str(value)))

    return df.sort_values(keys, key=key, kind="stable").reset_index(drop=True)


def ordered(values: Sequence[Any], preferred: Sequence[Any]) -> list[Any]:
    """The distinct ``values``, those in ``preferred`` first in its order, then the rest sorted."""
    present = list(dict.fromkeys(values))
    first = [v for v in preferred if v in present]
    return first + sorted((v for v in present if v not in first), key=str)
