"""Anomaly trials fused against one at a time, on this machine's CPU cores (docs/method.md 5.3).

In one run, per data set (default Thyroid and Arrhythmia; the `anomaly` study's quick budget,
25 grid points x 2 seeds = 50 trials):
  (a) one at a time: the 50 trials dealt to one process per core (one torch thread each), each
      process training and measuring its trials one after another, as a sweep with --fuse off;
  (b) fused: the 50 trials in one bundle per core (``make_bundles(..., "auto", cores)``, as
      ``isosweep run --fuse auto`` plans them), each process training its bundle as stacked units;
both timed after a warm-up that loads the data in every process. It prints the wall times, the
member-epochs per second, the ratio (a)/(b), and how many members got the same F1 and snapshot
in both paths (float32: a fused member equals its unfused trial up to rounding, which can move a
test score across the threshold).

With ``--epochs N1,N2`` both paths train N1 and then N2 epochs instead of the budget's (4,000
Thyroid, 3,000 Arrhythmia); each path's wall time is fitted as fixed + per-epoch cost through the
two measurements and projected to the budget, and the printout says so. (One value N: projected
proportionally, which overstates what does not grow with epochs: loading, the 10 snapshots, the
measurements. The ratio at N epochs is then a lower bound of the budget's ratio: those costs are
the same per trial in both paths and weigh less over more epochs.) ``--rounds R`` alternates the
two paths R times and keeps each one's fastest round, for a machine shared with other work.

``--unit-sweep`` also measures training alone (one snapshot), in one process with one thread,
member-epochs per second of one seed's members trained as stacked units of K members (K = 1,
the unbundled trial's code, 4, 8, 16, 25; ``isosweep.trainers.anomaly.CPU_UNIT_MEMBERS``), and
masking against grouping: 16 members of two seeds (two split sizes) as one masked unit of 16, or
as two units of 8 grouped by split size.

    .venv/bin/python benchmarks/anomaly_fusion.py --data-root /path/to/data [--datasets thyroid,arrhythmia]
        [--seeds 2] [--epochs N] [--processes P] [--unit-sweep]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from isosweep.orchestrator.plan import make_bundles
from isosweep.studies import get_study
from isosweep.trainers.config import TrialConfig


def _work(args: tuple[list[dict], bool, str, bool]) -> dict[str, tuple[str, float | None, int | None]]:
    """Train ``cfgs`` one by one or as one bundle; returns key -> (status, f1, snapshot epoch).
    ``warm``: only load the data (imports, file cache) and return."""
    from isosweep.trainers.data.anomaly import load_anomaly
    from isosweep.trainers.run import run_bundle, run_trial

    cfg_dicts, fused, root, warm = args
    torch.set_num_threads(1)
    cfgs = [TrialConfig.from_dict(d) for d in cfg_dicts]
    if warm:
        for cfg in cfgs:
            load_anomaly(cfg.dataset, root, cfg.seed)
        torch.optim.Adam([torch.zeros(1, requires_grad=True)], fused=True)  # its first use imports torch._dynamo
        return {}
    results = run_bundle(cfgs, None, None, root) if fused else [run_trial(c, None, None, root) for c in cfgs]
    return {r.key: (r.status.value, r.scalars.get("f1"), r.scalars.get("snapshot_epoch")) for r in results}


def timed(shares: list[list[TrialConfig]], fused: bool, root: str) -> tuple[float, dict[str, Any]]:
    """Wall seconds of training ``shares`` in one process each, and the members' outcomes."""
    tasks = [[c.to_dict() for c in share] for share in shares]
    with mp.get_context("spawn").Pool(len(tasks)) as pool:
        pool.map(_work, [(t, fused, root, True) for t in tasks])
        start = time.perf_counter()
        found = pool.map(_work, [(t, fused, root, False) for t in tasks])
        wall = time.perf_counter() - start
    return wall, {k: v for part in found for k, v in part.items()}


def compare(dataset: str, seeds: int, epochs: int | None, processes: int, root: str, rounds: int = 1) -> dict[str, Any]:
    """Both paths, alternating for ``rounds`` rounds so that both see the same load on a shared
    machine; each path's best round counts."""
    quick = get_study("anomaly").configs("quick", seeds=seeds, where={"dataset": (dataset,)})
    budget_epochs = quick[0].epochs
    cfgs = [replace(c, epochs=epochs) for c in quick] if epochs else quick
    one_by_one = [cfgs[p::processes] for p in range(processes)]
    bundles = [list(b) for b in make_bundles(cfgs, "auto", processes)]
    wall_a = wall_b = float("inf")
    for _ in range(rounds):
        took_a, got_a = timed(one_by_one, False, root)
        took_b, got_b = timed(bundles, True, root)
        wall_a, wall_b = min(wall_a, took_a), min(wall_b, took_b)
    same_f1 = sum(1 for k in got_a if got_a[k][1] == got_b[k][1])
    same_snapshot = sum(1 for k in got_a if got_a[k][2] == got_b[k][2])
    diffs = [abs(got_a[k][1] - got_b[k][1]) for k in got_a if got_a[k][1] is not None and got_b[k][1] is not None]
    return {
        "dataset": dataset,
        "trials": len(cfgs),
        "epochs": cfgs[0].epochs,
        "budget_epochs": budget_epochs,
        "wall_a": wall_a,
        "wall_b": wall_b,
        "bundles": [len(b) for b in bundles],
        "same_f1": same_f1,
        "same_snapshot": same_snapshot,
        "max_f1_diff": max(diffs, default=0.0),
        "ok": sum(1 for v in got_b.values() if v[0] == "ok"),
    }


def project(rows: list[dict[str, Any]], key: str) -> float:
    """Wall seconds at the budget's epochs from the measured ``rows`` of one data set: a line
    through two measurements (fixed + per-epoch cost), else proportional to the epochs."""
    budget = rows[0]["budget_epochs"]
    if len(rows) == 1:
        return rows[0][key] * budget / rows[0]["epochs"]
    (e1, w1), (e2, w2) = [(r["epochs"], r[key]) for r in (rows[0], rows[-1])]
    per_epoch = (w2 - w1) / (e2 - e1)
    return w1 + per_epoch * (budget - e1)


def unit_sweep(dataset: str, root: str, epochs: int, sizes: Sequence[int], rounds: int = 2) -> None:
    """Training alone (one snapshot, one thread): member-epochs per second of units of K members,
    the best of ``rounds`` interleaved rounds; then masking against grouping by split size."""
    from isosweep.trainers.anomaly import split_rows, train_anomaly_bundle
    from isosweep.trainers.data.anomaly import load_anomaly

    torch.set_num_threads(1)
    cfgs = [
        replace(c, epochs=epochs, snapshots=1)
        for c in get_study("anomaly").configs("quick", seeds=2, where={"dataset": (dataset,)})
    ]
    data = {s: load_anomaly(dataset, root, s) for s in (0, 1)}
    splits = {s: split_rows(data[s], s, cfgs[0].val_fraction) for s in (0, 1)}
    seed0 = [c for c in cfgs if c.seed == 0]

    def rate(members: list[TrialConfig], unit: int | None) -> float:
        start = time.perf_counter()
        train_anomaly_bundle(
            members, [splits[m.seed] for m in members], [data[m.seed].anomaly_ratio for m in members], unit_members=unit
        )
        return len(members) * epochs / (time.perf_counter() - start)

    rate(seed0[:2], 2)  # warm-up: the first optimiser imports torch._dynamo
    mixed = seed0[:8] + [c for c in cfgs if c.seed == 1][:8]
    best: dict[Any, float] = {}
    for _ in range(rounds):
        for k in sizes:
            best[k] = max(best.get(k, 0.0), rate(seed0[: max(k, 4)], k))
        best["masked"] = max(best.get("masked", 0.0), rate(mixed, 16))
        best["grouped"] = max(best.get("grouped", 0.0), rate(mixed, 8))
    print(
        f"\n{dataset}: training alone, units of K members of one seed, one process x 1 thread, {epochs} epochs, "
        f"best of {rounds} rounds (splits of {splits[0].fit.shape[0]} and {splits[1].fit.shape[0]} rows)"
    )
    print(f"{'K':>4} {'member-epochs/s':>16} {'vs K=1':>8}")
    for k in sizes:
        print(f"{k:>4} {best[k]:>16.1f} {best[k] / best[sizes[0]]:>7.2f}x")
    print(
        f"16 members of 2 split sizes: one masked unit of 16 {best['masked']:.1f}, two units of 8 grouped by size "
        f"{best['grouped']:.1f} member-epochs/s (grouped/masked {best['grouped'] / best['masked']:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=os.environ.get("ISOSWEEP_DATA"), help="the real data sets' folder")
    parser.add_argument("--datasets", default="thyroid,arrhythmia")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", default=None, help="N or N1,N2: train this many epochs and project to the budget")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=1, help="alternate the two paths this many times; best counts")
    parser.add_argument("--unit-sweep", action="store_true")
    parser.add_argument("--unit-epochs", type=int, default=60)
    parser.add_argument("--skip-compare", action="store_true")
    args = parser.parse_args()
    if not args.data_root:
        parser.error("give --data-root (or set ISOSWEEP_DATA)")
    datasets = args.datasets.split(",")
    print(
        f"anomaly quick budget, {args.seeds} seeds x 25 grid points per data set, {args.processes} processes x 1 "
        f"thread, load average before: {os.getloadavg()[0]:.2f}"
    )
    epochs_list = [int(e) for e in args.epochs.split(",")] if args.epochs else [None]
    rows = (
        []
        if args.skip_compare
        else [
            compare(d, args.seeds, e, args.processes, args.data_root, args.rounds)
            for d in datasets
            for e in epochs_list
        ]
    )
    if rows:
        print(
            f"\n{'data set':<11} {'trials':>6} {'epochs':>6} {'one at a time s':>16} {'fused s':>8} "
            f"{'ratio':>6} {'member-epochs/s (a -> b)':>25} {'same F1':>8} {'same snapshot':>13} {'max |dF1|':>9}"
        )
        for r in rows:
            rate_a = r["trials"] * r["epochs"] / r["wall_a"]
            rate_b = r["trials"] * r["epochs"] / r["wall_b"]
            print(
                f"{r['dataset']:<11} {r['trials']:>6} {r['epochs']:>6} {r['wall_a']:>16.1f} {r['wall_b']:>8.1f} "
                f"{r['wall_a'] / r['wall_b']:>5.2f}x {rate_a:>11.0f} -> {rate_b:>10.0f} "
                f"{r['same_f1']:>4}/{r['trials']:<3} {r['same_snapshot']:>8}/{r['trials']:<4} {r['max_f1_diff']:>9.4f}"
            )
        print(f"trials per fused bundle: {rows[0]['bundles']}; ok members: {', '.join(str(r['ok']) for r in rows)}")
        if any(r["epochs"] != r["budget_epochs"] for r in rows):
            print(
                f"\nmeasured at {args.epochs} epochs, not at the quick budget; projected to it "
                + (
                    "through fixed + per-epoch costs fitted to the two measurements:"
                    if len(epochs_list) > 1
                    else "in proportion to the epochs:"
                )
            )
            for d in datasets:
                mine = [r for r in rows if r["dataset"] == d]
                walls = [project(mine, key) for key in ("wall_a", "wall_b")]
                print(
                    f"  {d}: {mine[0]['budget_epochs']} epochs: one at a time {walls[0] / 60:.1f} min, fused "
                    f"{walls[1] / 60:.1f} min, ratio {walls[0] / walls[1]:.2f}x (projected)"
                )
    if args.unit_sweep:
        for d in datasets:
            unit_sweep(d, args.data_root, args.unit_epochs, (1, 4, 8, 16, 25))
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
