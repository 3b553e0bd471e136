"""isosweep: run, resume and query the ablation studies of "Quantitative Understanding of VAE as a
Non-linearly Scaled Isometric Embedding" (Nakagawa, Kato, Suzuki, ICML 2021).

In a notebook, over a store that ``isosweep run`` wrote (a folder or an fsspec URL)::

    import isosweep

    df = isosweep.trials("demo-results", dataset="mix", loss=["se", "uconv"])
    dims = isosweep.dims("demo-results", study="toy", lam=100.0, active=True)
    isosweep.query("demo-results", "select loss, avg(corr_elbo) from trials group by loss")
    isosweep.report("toy", "demo-results", out="demo-report")
    con = isosweep.connect("demo-results")   # the read-only DuckDB connection itself

and sweeps (``isosweep.sweeps``), as ``isosweep run``, ``resume`` and ``status`` do::

    result = isosweep.run("toy", budget="smoke", where={"lam": 100}, store="demo-results")
    isosweep.plan("toy", budget="quick", store="demo-results").to_run
    isosweep.status("demo-results").rows

Bad input raises :class:`isosweep.UsageError`, whose message says what is wrong and how to fix it.

Every Ray worker runs this file before it imports ``isosweep.trainers``: it imports only the
standard library (DuckDB, pandas and the analysis package are imported by the functions that use
them), and ``__version__`` and the sweep functions (``isosweep.sweeps``) are looked up on first use.
"""

from __future__ import annotations

from typing import Any

from isosweep.api import connect, curves, dims, points, query, report, trials
from isosweep.errors import UsageError

__all__ = [
    "UsageError",
    "__version__",
    "connect",
    "curves",
    "dims",
    "plan",
    "points",
    "query",
    "report",
    "resume",
    "run",
    "status",
    "trials",
]

_SWEEPS = ("plan", "resume", "run", "status")
"""The functions of ``isosweep.sweeps``, imported on first use: they import the studies, the store
and the trainers' configurations, which the workers' ``import isosweep`` does not need."""


def __getattr__(name: str) -> Any:
    # Reading the installed metadata scans sys.path (tens of milliseconds): done on first use
    # only, so that the workers' imports do not pay for it.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("isosweep")
        except PackageNotFoundError:
            value = "unknown"
        globals()["__version__"] = value
        return value
    if name in _SWEEPS:
        from isosweep import sweeps

        function = getattr(sweeps, name)
        globals()[name] = function
        return function
    raise AttributeError(f"module 'isosweep' has no attribute {name!r}")
