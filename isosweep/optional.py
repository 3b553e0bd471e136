"""The dependencies that only some commands need, checked before they are used: a machine without
them (a GPU box that trains with ``--executor local``, a container without DuckDB) still runs,
resumes and counts sweeps, and the command that needs one says so in one line."""

from __future__ import annotations

import importlib.util

from isosweep.errors import UsageError

INSTALL = {"duckdb": "duckdb", "ray": "'ray[tune]'", "optuna": "optuna", "matplotlib": "matplotlib"}
"""The pip argument that installs each optional module."""


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here (found, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, needed_by: str) -> None:
    """UsageError, naming what needs ``module`` and how to install it, where it is not installed."""
    if not installed(module):
        raise UsageError(
            f"{needed_by} needs {module}, which is not installed here; install it "
            f"(pip install {INSTALL.get(module, module)}) and run it again"
        )
