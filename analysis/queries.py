"""Named summary queries: SQL kept in ``analysis/sql/<name>.sql``, runnable as ``isosweep query @name``."""

from __future__ import annotations

from importlib import resources


def query_names() -> list[str]:
    return sorted(p.name[:-4] for p in resources.files("analysis").joinpath("sql").iterdir() if p.name.endswith(".sql"))


def named_query(name: str) -> str:
    """The SQL of the named query; KeyError naming the known ones otherwise."""
    path = resources.files("analysis").joinpath("sql", f"{name}.sql")
    if not path.is_file():
        raise KeyError(f"unknown named query @{name}; known: {', '.join('@' + n for n in query_names())}")
    return path.read_text()
