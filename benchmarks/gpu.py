"""Fused training on one GPU against one trial at a time on that GPU and against the CPU.

Two workloads, trained for a few epochs each (training alone: the measurements after training are
the same for every path):
  toy:     the 90-trial toy ablation (docs/method.md 5.1), 50,000 rows per trial;
  thyroid: the anomaly grid on Thyroid (docs/method.md 5.3), 25 points x ``--seeds`` seeds.
Paths, each timed after a warm-up:
  fused on the device      all members as one bundle (on a GPU one stacked unit; on a CPU the
                           anomaly bundles' cache-sized units);
  one at a time on device  each trial alone (a bundle of one), on ``--sample`` trials, scaled to all;
  CPU fused / CPU one at a time   the same on the CPU, with every core's threads in this process.
It prints member-samples per second (members x epochs x training rows / seconds), the ratios, and
the projected wall times, on the device, of the toy ablation at the paper budget (90 x 500 epochs
x 50,000 rows) and of the paper's whole anomaly grid (4 data sets x 25 points x 20 seeds at the
paper's epochs). The grid's projection trains, for each data set found under ``--data-root``, one
bundle of the size ``--fuse auto`` would give it on this device, after a warm-up, for ``--grid-epochs``
epochs and for a fifth of that (their difference is the cost of an epoch, the rest that of a
snapshot). ``--json PATH`` writes the headline figures as JSON.

``--device cpu`` runs the device paths on the CPU (no GPU needed): the script's own check, whose
numbers are CPU numbers.

    .venv/bin/python benchmarks/gpu.py --data-root /path/to/data [--device cuda|cpu] [--epochs 2]
        [--seeds 2] [--sample 3] [--grid-datasets thyroid,arrhythmia,kddcup,kddcup_rev] [--grid-epochs 25]
        [--skip-cpu] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from isosweep.orchestrator.plan import GpuBudget, bundle_size, gpu_bundle_size
from isosweep.studies import get_study
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.device import device_name, resolve, synchronize

PAPER_TOY_MEMBER_SAMPLES = 90 * 500 * 50_000


def _timed(run: Callable[[], None], where: torch.device) -> float:
    synchronize(where)
    start = time.perf_counter()
    run()
    synchronize(where)
    return time.perf_counter() - start


def toy_paths(
    cfgs: Sequence[TrialConfig], where: torch.device, sample: int, capture: bool = False
) -> tuple[float, float]:
    """Seconds to train ``cfgs`` fused (each epoch a replayed CUDA graph where ``capture``), and
    one at a time (``sample`` trials, scaled)."""
    from isosweep.trainers.data import make_data
    from isosweep.trainers.fused import train_bundle

    datas = [make_data(c) for c in cfgs]
    train_bundle(cfgs[:2], datas[:2], where=where, capture=capture)  # warm-up: kernels, allocator, lazy imports
    fused = _timed(lambda: train_bundle(cfgs, datas, where=where, capture=capture), where)
    alone = _timed(lambda: [train_bundle([c], [d], where=where) for c, d in zip(cfgs[:sample], datas[:sample])], where)
    return fused, alone * len(cfgs) / sample


def toy_step_profile(cfgs: Sequence[TrialConfig], where: torch.device, capture: bool) -> dict[str, float | None]:
    """One more epoch of the fused toy bundle under ``torch.profiler``: ms per optimiser step,
    kernel launches per step (the CUDA runtime's launch calls, a graph replay counting one), and
    the GPU busy fraction (the kernels' summed device time over the epoch's wall time). On a CPU
    only the ms per step is measured."""
    from torch.profiler import ProfilerActivity, profile

    from isosweep.trainers.data import make_data
    from isosweep.trainers.fused import train_bundle

    one = [replace(c, epochs=1) for c in cfgs]
    datas = [make_data(c) for c in one]
    train_bundle(one, datas, where=where, capture=capture)  # warm-up
    steps = -(-one[0].n_train // one[0].batch_size)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if where.type == "cuda" else [])
    with profile(activities=activities) as prof:
        wall = _timed(lambda: train_bundle(one, datas, where=where, capture=capture), where)
    events = prof.key_averages()
    launches = sum(
        e.count
        for e in events
        if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cudaGraphLaunch", "cuLaunchKernelEx")
    )
    kernel_us = sum(
        getattr(e, "self_device_time_total", 0.0)
        for e in events
        if getattr(e, "device_type", None) is not None and "CUDA" in str(e.device_type)
    )
    # The one-epoch bundle also builds its models and reads the data: its wall time is an upper bound.
    return {
        "ms_per_step": wall * 1e3 / steps,
        "launches_per_step": launches / steps,
        "gpu_busy_fraction": kernel_us / 1e6 / wall if where.type == "cuda" else None,
    }


def anomaly_inputs(cfgs: Sequence[TrialConfig], root: str) -> tuple[list, list]:
    from isosweep.trainers.anomaly import split_rows
    from isosweep.trainers.data.anomaly import load_anomaly

    splits, ratios, seen = [], [], {}
    for c in cfgs:
        if c.seed not in seen:
            data = load_anomaly(c.dataset, root, c.seed)
            seen[c.seed] = (split_rows(data, c.seed, c.val_fraction), data.anomaly_ratio)
        splits.append(seen[c.seed][0])
        ratios.append(seen[c.seed][1])
    return splits, ratios


def anomaly_paths(cfgs: Sequence[TrialConfig], root: str, where: torch.device, sample: int) -> tuple[float, float]:
    from isosweep.trainers.anomaly import train_anomaly_bundle

    splits, ratios = anomaly_inputs(cfgs, root)
    train_anomaly_bundle(cfgs[:2], splits[:2], ratios[:2], where=where)
    fused = _timed(lambda: train_anomaly_bundle(cfgs, splits, ratios, where=where), where)
    alone = _timed(
        lambda: [
            train_anomaly_bundle([c], [s], [r], where=where)
            for c, s, r in zip(cfgs[:sample], splits[:sample], ratios[:sample])
        ],
        where,
    )
    return fused, alone * len(cfgs) / sample


def member_samples(cfgs: Sequence[TrialConfig], rows: Sequence[int]) -> float:
    return float(sum(c.epochs * n for c, n in zip(cfgs, rows)))


def grid_projection(
    root: str, datasets: Sequence[str], where: torch.device, epochs: int, budget: GpuBudget | None
) -> dict[str, float | None]:
    """Projected seconds of each data set's paper grid (25 points x 20 seeds) on ``where``: one
    bundle of the planner's size, warmed up, then trained twice with one snapshot each, for
    ``epochs // 5`` and for ``epochs`` epochs. The difference gives the cost of an epoch; the rest
    of the shorter run, that of a snapshot with the bundle's setup (an upper bound). Projected: the
    paper's epochs plus its snapshots, times the number of bundles, run one after another."""
    from isosweep.trainers.anomaly import DEFAULT_SNAPSHOTS, train_anomaly_bundle
    from isosweep.trainers.data.errors import DataError

    found: dict[str, float | None] = {}
    short = max(1, epochs // 5)
    for dataset in datasets:
        grid = get_study("anomaly").configs("paper", seeds=20, where={"dataset": (dataset,)})
        paper_epochs = grid[0].epochs
        k = (
            gpu_bundle_size(grid, budget)
            if budget is not None
            else bundle_size("auto", len(grid), os.cpu_count() or 1, True)
        )
        try:
            splits, ratios = anomaly_inputs(grid[:k], root)
        except DataError as exc:
            print(f"  {dataset}: skipped ({exc})")
            found[dataset] = None
            continue

        def run(n_epochs: int, grid=grid, k=k, splits=splits, ratios=ratios) -> float:
            members = [replace(c, epochs=n_epochs, snapshots=1) for c in grid[:k]]
            return _timed(lambda: train_anomaly_bundle(members, splits, ratios, where=where), where)

        run(1)  # warm-up: kernels, allocator
        t_short, t_long = run(short), run(epochs)
        per_epoch = max(0.0, (t_long - t_short) / (epochs - short)) if epochs > short else t_long / epochs
        per_snapshot = max(0.0, t_short - short * per_epoch)
        bundles = -(-len(grid) // k)
        snapshots = grid[0].snapshots or DEFAULT_SNAPSHOTS
        found[dataset] = (per_epoch * paper_epochs + per_snapshot * snapshots) * bundles
        print(
            f"  {dataset}: bundle of {k}: {per_epoch * 1e3:.1f} ms per epoch (from {short} and {epochs} epochs), "
            f"{per_snapshot:.2f} s per snapshot -> {bundles} bundle(s) x {paper_epochs} epochs: "
            f"{found[dataset] / 3600:.2f} h"
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=os.environ.get("ISOSWEEP_DATA"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per trial in the path comparison")
    parser.add_argument("--anomaly-epochs", type=int, default=200, help="Thyroid epochs in the path comparison")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--sample", type=int, default=3, help="trials timed one at a time (scaled to all)")
    parser.add_argument("--grid-datasets", default="thyroid,arrhythmia,kddcup,kddcup_rev")
    parser.add_argument("--grid-epochs", type=int, default=25, help="epochs of the longer timed run per data set")
    parser.add_argument("--skip-cpu", action="store_true", help="do not time the CPU paths")
    parser.add_argument("--json", metavar="PATH", help="also write the headline figures to PATH as JSON")
    args = parser.parse_args()
    where = resolve(args.device)
    cpu = torch.device("cpu")
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"device: {device_name(where)}; CPU: {os.cpu_count()} cores, {torch.get_num_threads()} torch threads")
    if where.type == "cpu":
        print("no GPU in this run: the 'device' rows below are CPU numbers (the script's own check)")

    toy = [replace(c, epochs=args.epochs) for c in get_study("toy").configs("quick")]
    toy_rows = [c.n_train for c in toy]
    rows: list[tuple[str, str, float]] = []
    fused, alone = toy_paths(toy, where, args.sample)
    rows += [("toy", "fused on device", fused), ("toy", "one at a time on device", alone)]
    if where.type == "cuda":
        captured, _ = toy_paths(toy, where, 0, capture=True)
        rows += [("toy", "fused, captured epochs", captured)]
    if where.type != "cpu" and not args.skip_cpu:
        c_fused, c_alone = toy_paths(toy, cpu, args.sample)
        rows += [("toy", "CPU fused", c_fused), ("toy", "CPU one at a time", c_alone)]
    thyroid: list[TrialConfig] = []
    if args.data_root:
        thyroid = [
            replace(c, epochs=args.anomaly_epochs)
            for c in get_study("anomaly").configs("quick", seeds=args.seeds, where={"dataset": ("thyroid",)})
        ]
        splits, _ = anomaly_inputs(thyroid, args.data_root)
        thyroid_rows = [s.fit.shape[0] for s in splits]
        a_fused, a_alone = anomaly_paths(thyroid, args.data_root, where, args.sample)
        rows += [("thyroid", "fused on device", a_fused), ("thyroid", "one at a time on device", a_alone)]
        if where.type != "cpu" and not args.skip_cpu:
            ca_fused, ca_alone = anomaly_paths(thyroid, args.data_root, cpu, args.sample)
            rows += [("thyroid", "CPU fused", ca_fused), ("thyroid", "CPU one at a time", ca_alone)]

    print(
        f"\ntoy: {len(toy)} trials x {args.epochs} epochs; thyroid: {len(thyroid)} trials x {args.anomaly_epochs} "
        f"epochs; one-at-a-time rows timed on {args.sample} trials and scaled"
    )
    print(
        f"{'workload':<8} {'path':<26} {'seconds':>9} {'member-samples/s':>17} {'vs one at a time':>17} {'vs CPU fused':>13}"
    )
    for workload in ("toy", "thyroid"):
        mine = {path: s for w, path, s in rows if w == workload}
        if not mine:
            continue
        samples = member_samples(toy, toy_rows) if workload == "toy" else member_samples(thyroid, thyroid_rows)
        base = mine["one at a time on device"]
        cpu_fused = mine.get("CPU fused")
        for path, seconds in mine.items():
            vs_cpu = f"{cpu_fused / seconds:>12.2f}x" if cpu_fused else f"{'-':>13}"
            print(
                f"{workload:<8} {path:<26} {seconds:>9.2f} {samples / seconds:>17,.0f} {base / seconds:>16.2f}x {vs_cpu}"
            )
    timed = dict(((w, p), s) for w, p, s in rows)
    best_toy = min(s for (w, p), s in timed.items() if w == "toy" and p != "one at a time on device" and "CPU" not in p)
    toy_rate = member_samples(toy, toy_rows) / best_toy
    figures: dict[str, object] = {
        "device": device_name(where),
        "toy_fused_vs_one_at_a_time": timed[("toy", "one at a time on device")] / best_toy,
        "toy_paper_projection_s": PAPER_TOY_MEMBER_SAMPLES / toy_rate,
    }
    print(
        f"\nprojected on {device_name(where)}, fastest fused path: toy ablation at the paper budget "
        f"{figures['toy_paper_projection_s'] / 3600:.2f} h"
    )
    for capture in (False, True) if where.type == "cuda" else (False,):
        step = toy_step_profile(toy, where, capture)
        name = "captured" if capture else "eager"
        print(
            f"toy bundle of {len(toy)}, {name}: {step['ms_per_step']:.3f} ms per step, "
            f"{step['launches_per_step']:.1f} launches per step, GPU busy "
            + ("-" if step["gpu_busy_fraction"] is None else f"{step['gpu_busy_fraction']:.1%}")
        )
        figures[f"toy_{name}"] = step
        figures["toy_launches_per_step"] = step["launches_per_step"]
        figures["gpu_busy_fraction"] = step["gpu_busy_fraction"]
    if args.data_root:
        budget = None
        if where.type == "cuda":
            budget = GpuBudget(float(torch.cuda.get_device_properties(where).total_memory), 1)
        print("paper anomaly grid (25 points x 20 seeds per data set), bundles as --fuse auto sizes them here:")
        grid = grid_projection(args.data_root, args.grid_datasets.split(","), where, args.grid_epochs, budget)
        measured = {d: s for d, s in grid.items() if s is not None}
        missing = [d for d, s in grid.items() if s is None]
        print(
            f"  whole grid of {', '.join(measured)}: {sum(measured.values()) / 3600:.2f} h"
            + (f" (not measured: {', '.join(missing)})" if missing else "")
        )
        figures["anomaly_grid_projection_s"] = sum(measured.values()) if not missing else None
        figures["anomaly_grid_per_dataset_s"] = grid
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
