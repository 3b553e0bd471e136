"""isosweep: run, resume and query the ablation studies of "Quantitative Understanding of VAE as a
Non-linearly Scaled Isometric Embedding" (Nakagawa, Kato, Suzuki, ICML 2021).

In a notebook, over a store that ``isosweep run`` wrote (a folder or an fsspec URL)::

    import isosweep

    df = isosweep.trials("demo-results", dataset="mix", loss=["se", "uconv"])
    dims = isosweep.dims("demo-results", study="toy", lam=100.0, active=True)
    isosweep.query("demo-results", "select loss, avg(corr_elbo) from trials group by loss")
    isosweep.report("toy", "demo-results", out="demo-report")
    con = isosweep.connect("demo-results")   # the read-only DuckDB connection itself

Bad input raises :class:`isosweep.UsageError`, whose message says what is wrong and how to fix it.

Every Ray worker runs this file before it imports ``isosweep.trainers``: it imports only the
standard library (DuckDB, pandas and the analysis package are imported by the functions that use
them), and ``__version__`` is looked up on first use.
"""

from __future__ import annotations

from typing import Any

from isosweep.api import connect, curves, dims, points, query, report, trials
from isosweep.errors import UsageError

__all__ = ["UsageError", "__version__", "connect", "curves", "dims", "points", "query", "report", "trials"]


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
    raise AttributeError(f"module 'isosweep' has no attribute {name!r}")
