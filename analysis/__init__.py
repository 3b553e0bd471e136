"""Read-only analysis of a results store: DuckDB views, named summary queries, figures, reports."""

DEFAULT_TIMEOUT_S = 300.0
"""How long ``isosweep query`` lets one query run (``--timeout``): every documented query over a
store of a whole paper sweep takes well under a second; a query still running after five minutes
is a mistake (a cross join, ``range(1e12)``, a recursive CTE without an end)."""
