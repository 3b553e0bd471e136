"""Fused against unfused training of the toy ablation, and isosweep's orchestration overhead.

In one run, on this machine's cores:
  (a) unfused: the 90 toy trials one by one, one process per core, one torch thread each;
  (b) fused: bundles of K = 10, 30, 90 members (one process per core, one thread each; and K = 90
      as a single bundle using every core's threads);
  (c) orchestration overhead per trial: a plain Ray Tune run of trivial trials (one Tune trial
      each, default settings) against isosweep's driver on the same trials (bundled, fused,
      actors reused), both minus the trials' own compute time measured in-process.
It prints member-samples per second and ratios against (a), the projected wall time of the full
ablation at the paper budget, and the overhead ratio of (c).

    .venv/bin/python benchmarks/fusion.py [--epochs 1] [--skip-overhead]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Sequence

import torch

from isosweep.studies import get_study
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data import make_data
from isosweep.trainers.fused import train_bundle

PAPER_MEMBER_SAMPLES = 90 * 500 * 50_000


def _train(args: tuple[list[dict], int, int]) -> float:
    """Train ``cfgs`` in bundles of ``k`` with ``threads`` torch threads; returns seconds training."""
    cfg_dicts, k, threads = args
    torch.set_num_threads(threads)
    cfgs = [TrialConfig.from_dict(d) for d in cfg_dicts]
    datas = [make_data(c) for c in cfgs]
    start = time.perf_counter()
    for i in range(0, len(cfgs), k):
        train_bundle(cfgs[i : i + k], datas[i : i + k])
    return time.perf_counter() - start


def throughput(cfgs: Sequence[TrialConfig], k: int, processes: int, threads: int) -> float:
    """Member-samples per second training ``cfgs`` in bundles of ``k`` over ``processes`` processes."""
    share = [[c.to_dict() for c in cfgs[p::processes]] for p in range(processes)]
    with mp.get_context("spawn").Pool(processes) as pool:
        pool.map(_train, [([share[0][0]], 1, threads)] * processes)  # warm up imports and allocators
        start = time.perf_counter()
        pool.map(_train, [(s, k, threads) for s in share])
        wall = time.perf_counter() - start
    samples = sum(c.n_train * c.epochs for c in cfgs)
    return samples / wall


def overhead(n_trials: int) -> tuple[float, float]:
    """Seconds per trivial trial spent outside the trial's own compute: plain Tune, isosweep."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")
    import ray
    from ray import tune

    from isosweep.orchestrator.launch import run_sweep
    from isosweep.orchestrator.options import RunOptions
    from isosweep.orchestrator.plan import make_plan
    from isosweep.store import Store
    from isosweep.trainers.run import run_trial

    cfgs = [
        TrialConfig.from_dict({**c.to_dict(), "epochs": 1, "n_train": 128, "n_eval": 64})
        for c in get_study("toy").configs("smoke")
    ][:n_trials]
    torch.set_num_threads(1)
    start = time.perf_counter()
    for c in cfgs:
        run_trial(c)
    compute = (time.perf_counter() - start) / n_trials

    def plain(config: dict) -> None:
        torch.set_num_threads(1)
        result = run_trial(TrialConfig.from_dict(config["cfg"]))
        tune.report({"loss": result.scalars["loss_final"]})

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            tune.Tuner(
                plain,
                param_space={"cfg": tune.grid_search([c.to_dict() for c in cfgs])},
                run_config=tune.RunConfig(storage_path=tmp, name="plain", verbose=0),
            ).fit()
            plain_wall = time.perf_counter() - start
            store = Store(os.path.join(tmp, "store"))
            plan = make_plan(cfgs, set(), "auto", slots=os.cpu_count() or 1, force=False)
            start = time.perf_counter()
            run_sweep(plan, store, RunOptions(sweep="bench"))
            ours_wall = time.perf_counter() - start
    finally:
        ray.shutdown()
    slots = os.cpu_count() or 1
    # Wall time per trial times the slots that ran in parallel, less the trial's own compute.
    return plain_wall * slots / n_trials - compute, ours_wall * slots / n_trials - compute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1, help="epochs of 50,000 points per trial (default 1)")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    cfgs = [TrialConfig.from_dict({**c.to_dict(), "epochs": args.epochs}) for c in get_study("toy").configs("quick")]
    if not args.skip_throughput:
        report_throughput(cfgs, args.epochs, cores)
    if not args.skip_overhead:
        plain, ours = overhead(90)
        print(
            f"orchestration overhead per trivial trial: plain Tune {plain:.3f} s, isosweep {ours:.3f} s, "
            f"ratio {plain / max(ours, 1e-9):.1f}x"
        )


def report_throughput(cfgs: list[TrialConfig], epochs: int, cores: int) -> None:
    print(f"{len(cfgs)} toy trials, {epochs} epoch(s) of 50,000 points each, batch 128, {cores} cores")
    base = throughput(cfgs, 1, cores, 1)
    rows = [("unfused, 1 trial per process", base)]
    for k in (10, 30):
        rows.append((f"fused K={k}, {cores} processes x 1 thread", throughput(cfgs, k, cores, 1)))
    rows.append(
        (f"fused K={90 // cores}, {cores} processes x 1 thread (all 90)", throughput(cfgs, 90 // cores, cores, 1))
    )
    rows.append((f"fused K=90, 1 process x {cores} threads", throughput(cfgs, 90, 1, cores)))
    print(f"{'configuration':<52} {'member-samples/s':>17} {'vs unfused':>11}")
    for name, rate in rows:
        print(f"{name:<52} {rate:>17,.0f} {rate / base:>10.2f}x")
    best_name, best = max(rows, key=lambda r: r[1])
    print(
        f"full toy ablation at the paper budget (90 x 500 epochs x 50,000): unfused {PAPER_MEMBER_SAMPLES / base / 3600:.1f} h, "
        f"best fused ({best_name}) {PAPER_MEMBER_SAMPLES / best / 3600:.1f} h"
    )


if __name__ == "__main__":
    main()
