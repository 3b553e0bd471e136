"""Read-only analysis of a results store: DuckDB views, named summary queries, figures, reports."""
