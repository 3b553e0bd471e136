"""Summary queries over a 10,000-trial store, before and after `isosweep compact`.

Builds a synthetic store with the real writer (one trials/dims/curves/points file per trial),
times the named summary queries and the completed-key lookup over the per-trial files, compacts,
and times them again. Prints the times and the ratios (before / after).

    .venv/bin/python benchmarks/compaction.py [--trials 10000] [--store DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from isosweep.analysis.db import run_query
from isosweep.analysis.queries import named_query
from isosweep.orchestrator.compact import compact
from isosweep.store import Store
from isosweep.studies import TOY_LAMBDAS
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.records import ESTIMATES, TrialResult, TrialStatus


def synthetic_result(i: int, rng: np.random.Generator) -> TrialResult:
    datasets, losses = ("norm", "ramp", "mix"), ("se", "dconv", "uconv")
    cfg = TrialConfig(
        study="toy",
        budget="paper",
        dataset=datasets[i % 3],
        loss=losses[(i // 3) % 3],
        lam=TOY_LAMBDAS[(i // 9) % 10],
        seed=i // 90,
        latent_dim=3,
    )
    now = datetime.now(timezone.utc)
    scalars = {
        "recon": float(rng.random()),
        "kl": float(rng.random()),
        "n_active": 3,
        "coding_loss": 0.01,
        "transform_loss": 0.001,
        "loss_final": 1.0,
        **{f"corr_{e}": float(rng.random()) for e in ESTIMATES},
        **{f"rank_{e}": float(rng.random()) for e in ESTIMATES},
    }
    dims = [
        {
            "dim": j,
            "rank": j + 1,
            "active": True,
            "norm_mean": float(rng.normal(1, 0.1)),
            "norm_sd": 0.1,
            "dprime_mean": 1.0,
            "dprime_sd": 0.1,
            "sigma_inv2_mean": 16.0 / 4**j,
            "var_ratio": 16.0 / 4**j,
            "kl_mean": 1.0,
        }
        for j in range(3)
    ]
    curves = [{"step": 391 * e, "epoch": e, "loss": 1.0 / e, "recon": 0.5, "kl": 0.5} for e in range(1, 11)]
    points = {"log_p_true": rng.normal(size=50), **{f"log_{e}": rng.normal(size=50) for e in ESTIMATES}}
    return TrialResult(cfg, TrialStatus.OK, now, now, scalars=scalars, dims=dims, curves=curves, points=points)


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--store", default=None, help="folder for the synthetic store (default: a temporary one)")
    args = parser.parse_args()
    root = Path(args.store or tempfile.mkdtemp(prefix="isosweep-bench-"))
    shutil.rmtree(root, ignore_errors=True)
    store = Store(str(root))
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for i in range(args.trials):
        store.write_result(synthetic_result(i, rng), "bench", {})
    print(f"wrote {args.trials} trials ({4 * args.trials} files) in {time.perf_counter() - start:.1f} s")

    queries = {
        "@toy_summary": named_query("toy_summary"),
        "count by status": "SELECT status, count(*) FROM trials GROUP BY ALL",
        "mean norm per point": "SELECT t.dataset, t.loss, t.lam, avg(d.norm_mean) FROM trials t JOIN dims d USING (trial_key) "
        "WHERE d.active GROUP BY ALL",
    }

    def measure() -> dict[str, float]:
        out = {name: timed(lambda sql=sql: run_query(str(root), sql)) for name, sql in queries.items()}
        out["completed-key lookup"] = timed(lambda: store.completed_keys(), repeat=1)
        return out

    before = measure()
    start = time.perf_counter()
    report = compact(store)
    print(f"compacted {report.merged_files} files into {report.written_files} in {time.perf_counter() - start:.1f} s")
    after = measure()
    assert run_query(str(root), "SELECT count(*) FROM trials").rows[0][0] == args.trials
    print(f"{'query':<24} {'per-trial files':>16} {'compacted':>10} {'ratio':>7}")
    for name in before:
        print(f"{name:<24} {before[name]:>15.3f}s {after[name]:>9.3f}s {before[name] / after[name]:>6.1f}x")
    if not args.store:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
