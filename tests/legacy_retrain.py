"""Retraining the legacy store's trials and comparing the results with the stored ones.

One place for what ``tests/test_legacy_results.py`` checks and what
``benchmarks/legacy_spread.py`` measures: which trials are retrained, how, which columns are
results, and when two results count as equal.

Float32 training is not bit-reproducible across machines: PyTorch picks AVX-512, AVX2 or plain
kernels by processor (``ATEN_CPU_CAPABILITY`` forces one), and the reduction order of its
kernels depends on that choice and on the thread count. So stored and retrained results are
compared with a relative tolerance, ``RTOL``, set from the measured spread (see its docstring).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.kinds import kind_of
from isosweep.trainers.run import run_trial

STORE = Path(__file__).resolve().parent / "fixtures" / "legacy-store"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

NOT_RESULTS = frozenset(
    {
        "wall_s",
        "started_at",
        "finished_at",
        "hostname",
        "device",
        "git_rev",
        "isosweep_version",
        "torch_version",
        "ray_version",
        "run_id",
        "sweep",
    }
)
"""Columns that say when, where and how long, not what: they differ on every run."""

RTOL = 3e-4
"""Relative tolerance of a retrained float32 result against the stored one.

Set from two measurements on an Intel Xeon with AVX-512 (16 trials each):
- the spread across kernel choices, ``.venv/bin/python benchmarks/legacy_spread.py``
  (``ATEN_CPU_CAPABILITY`` = default, avx2 and avx512, each with 1 and 2 torch threads): the
  largest relative difference from the stored value was 7.1e-5 (``dprime_sd`` of a MNIST
  dimension, default kernels, 1 thread);
- the smallest real change, ``MUTATIONS``, ``benchmarks/legacy_spread.py --mutations``: a learning
  rate 1 % higher moved some float result of every trial by at least 1.3e-3 relative (a Thyroid
  trial's ``kl_mean``); one more epoch by at least 0.17, another seed by at least 0.85.
3e-4 is about their geometric mean: 4x above the spread, 4x below the smallest change.
``test_each_mutation_fails_the_comparison`` keeps the second margin honest."""
ATOL = 1e-9
"""Absolute tolerance, for values that are zero up to rounding."""


@functools.cache
def _table(name: str) -> pa.Table:
    """All rows of one table of the legacy store (read once per process)."""
    return pa.concat_tables(
        [pq.read_table(p) for p in sorted((STORE / name).rglob("*.parquet"))], promote_options="default"
    )


def ok_trials() -> list[dict[str, Any]]:
    """The stored ``trials`` rows of the legacy store's ok trials."""
    return [row for row in _table("trials").to_pylist() if row["status"] == "ok"]


def stored_dims(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored ``dims`` rows of the trial ``row``, in dimension order."""
    return sorted(
        (d for d in _table("dims").to_pylist() if d["trial_key"] == row["trial_key"] and d["run_id"] == row["run_id"]),
        key=lambda d: d["dim"],
    )


def trial_id(row: dict[str, Any]) -> str:
    return f"{row['study']}-{row['dataset']}-{row['trial_key']}"


def config_of(row: dict[str, Any]) -> TrialConfig:
    return TrialConfig.from_dict(json.loads(row["config_json"]))


def data_root(cfg: TrialConfig) -> str | None:
    """Where the trial's data set is read from; None for the generated toy sets. Raises
    FileNotFoundError where the real data sets are missing."""
    if cfg.data_hash is not None:
        return str(STORE / "inputs")  # where `isosweep run custom` staged the file
    if kind_of(cfg).name == "mlp":
        return None
    if not DATA.is_dir():
        raise FileNotFoundError(f"real data sets not present at {DATA}")
    return str(DATA)


@dataclass(frozen=True)
class Retrained:
    """The results of one retraining: scalars (trials columns) and per-dimension rows."""

    status: str
    scalars: dict[str, Any]
    dims: list[dict[str, Any]]


def retrain(cfg: TrialConfig) -> Retrained:
    """Train ``cfg`` again, in this process, and measure it."""
    result = run_trial(cfg, data_root=data_root(cfg))
    return Retrained(result.status.value, dict(result.scalars), sorted(result.dims, key=lambda d: d["dim"]))


def relative_difference(a: Any, b: Any) -> float:
    """How far ``a`` is from ``b`` in the sense of ``math.isclose``: the smallest ``rel_tol`` under
    which they compare equal (with ``ATOL``); 0 for equal non-floats, inf for unequal ones."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return 0.0
        if math.isnan(a) or math.isnan(b):
            return math.inf
        gap = abs(a - b)
        return 0.0 if gap <= ATOL else gap / max(abs(a), abs(b))
    return 0.0 if a == b else math.inf


def differences(new: Retrained, row: dict[str, Any]) -> dict[str, float]:
    """Per result column (``dims.<column>[<dim>]`` for per-dimension ones), the relative difference
    of the retrained value from the stored one; only those above zero."""
    out: dict[str, float] = {}
    for k, v in new.scalars.items():
        if k not in NOT_RESULTS and k in row:
            out[k] = relative_difference(v, row[k])
    old_dims = stored_dims(row)
    if len(old_dims) != len(new.dims):
        out["dims.count"] = math.inf
        return out
    for a, b in zip(new.dims, old_dims):
        for k, v in a.items():
            out[f"dims.{k}[{a['dim']}]"] = relative_difference(v, b.get(k))
    return {k: d for k, d in out.items() if d > 0}


def float_differences(new: Retrained, row: dict[str, Any]) -> dict[str, float]:
    """``differences`` of the float results alone (finite): what a tolerance decides, as opposed
    to a count such as ``steps`` that tells two runs apart whatever the tolerance."""
    return {k: d for k, d in differences(new, row).items() if math.isfinite(d)}


def mutated(cfg: TrialConfig, mutation: str) -> TrialConfig:
    """``cfg`` with the smallest real change named ``mutation`` (see ``MUTATIONS``)."""
    if mutation == "one more epoch":
        if cfg.iterations is not None:  # image trials count mini-batch steps, not epochs
            return replace(cfg, iterations=cfg.iterations + 1)
        return replace(cfg, epochs=cfg.epochs + 1)
    if mutation == "learning rate 1 % higher":
        return replace(cfg, lr=cfg.lr * 1.01)
    if mutation == "another seed":
        return replace(cfg, seed=cfg.seed + 1)
    raise ValueError(f"unknown mutation {mutation!r}")


MUTATIONS = ("one more epoch", "learning rate 1 % higher", "another seed")
"""The smallest changes of a trial's science that the comparison must catch."""
