"""isosweep at scale: a toy sweep of about 10,000 smoke-size trials through the real CLI, beside
the same number of trivial trials through plain Ray Tune, in one command.

isosweep's side runs ``isosweep run toy --budget smoke --seeds S`` (S = trials / 90, rounded up:
10,080 trials for 10,000) into a fresh store, bundled and fused as ``--fuse auto`` decides, with the
sweep-end compaction on, and prints:
  - the sweep's wall time, and the part of it compaction took: the workers' merges of their units'
    files (worker-seconds over the slots) plus the sweep-end merge;
  - the overhead per trial per slot: wall time x slots / trials, less the trials' own compute per
    trial, measured by training the sweep's own bundles in this process (one thread, as a slot
    has; ``--compute-sample`` members of each bundle, scaled to the bundle);
  - the files left in the store's tables, and @toy_summary's latency right after the sweep (its
    first run, and the best of three).

Plain Ray Tune's side runs the same number of trials that only report once (one Tune trial each,
``reuse_actors=True``, as Ray's own release test of 10,000 trials does) on a local Ray of the
same cores; its overhead per trial per slot is its wall time x slots / trials. The last line is
the ratio of the two overheads.

    .venv/bin/python benchmarks/scale.py [--trials 10000] [--compute-sample 300] [--skip-plain]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from isosweep.analysis.db import run_query
from isosweep.analysis.queries import named_query
from isosweep.orchestrator.plan import make_plan
from isosweep.studies import get_study
from isosweep.trainers.run import run_bundle

EXE = str(Path(sys.executable).parent / "isosweep")


def isosweep_sweep(store: Path, seeds: int) -> tuple[float, float, float, str]:
    """Run the sweep through the CLI; (wall seconds, sweep-end compaction seconds, the workers'
    merges in worker-seconds, output)."""
    env = {k: v for k, v in os.environ.items() if k != "ISOSWEEP_STORE"}
    start = time.perf_counter()
    proc = subprocess.run(
        [
            EXE,
            "run",
            "toy",
            "--budget",
            "smoke",
            "--seeds",
            str(seeds),
            "--max-trials",
            "1000000",
            "--store",
            str(store),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"the sweep failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    merged = re.search(r"merged \d+ per-trial and compacted file\(s\) into \d+ in ([0-9.]+)s", proc.stdout)
    workers = re.search(r"workers merged \d+ per-trial file\(s\) into \d+ in ([0-9.]+)s", proc.stdout)
    return (wall, float(merged.group(1)) if merged else 0.0, float(workers.group(1)) if workers else 0.0, proc.stdout)


def compute_per_trial(seeds: int, slots: int, sample: int) -> float:
    """Seconds of training and measuring per trial, in this process, for the sweep's own bundles
    (``--fuse auto`` on ``slots`` slots): ``sample`` members of each distinct bundle, timed, and
    scaled to the bundle's members (a fused step's time grows with its members)."""
    torch.set_num_threads(1)
    configs = get_study("toy").configs("smoke", seeds)
    plan = make_plan(configs, set(), "auto", slots, force=False)
    total = 0.0
    for bundle in plan.bundles:
        part = list(bundle[:sample])
        start = time.perf_counter()
        run_bundle(part)
        total += (time.perf_counter() - start) * len(bundle) / len(part)
    return total / len(plan.to_run)


def plain_tune(trials: int, slots: int) -> float:
    """Wall seconds of ``trials`` trivial Ray Tune trials on a new local Ray of ``slots`` CPUs."""
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    import ray
    from ray import tune

    def trivial(config: dict) -> None:
        tune.report({"score": config["i"]})

    ray.init(address="local", num_cpus=slots, include_dashboard=False, logging_level="ERROR")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            tune.Tuner(
                trivial,
                param_space={"i": tune.grid_search(list(range(trials)))},
                tune_config=tune.TuneConfig(reuse_actors=True),
                run_config=tune.RunConfig(storage_path=tmp, name="plain", verbose=0),
            ).fit()
            return time.perf_counter() - start
    finally:
        ray.shutdown()


def summary_latency(store: Path) -> tuple[float, float, int]:
    """@toy_summary over the store: seconds of its first run, best of three, and its rows."""
    sql = named_query("toy_summary")
    times = []
    for _ in range(3):
        start = time.perf_counter()
        result = run_query(str(store), sql)
        times.append(time.perf_counter() - start)
    return times[0], min(times), len(result.rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10_000, help="trials on each side (default 10,000)")
    parser.add_argument("--compute-sample", type=int, default=300, help="members per bundle timed in-process")
    parser.add_argument("--skip-plain", action="store_true", help="only isosweep's side")
    parser.add_argument("--store", default=None, help="folder for the sweep's store (default: a temporary one)")
    args = parser.parse_args()
    slots = os.cpu_count() or 1
    seeds = math.ceil(args.trials / 90)
    trials = seeds * 90
    root = Path(args.store or tempfile.mkdtemp(prefix="isosweep-scale-"))
    shutil.rmtree(root, ignore_errors=True)
    print(f"{trials} toy trials at the smoke budget ({seeds} seeds), {slots} slots (cores)", flush=True)

    wall, sweep_end, workers, output = isosweep_sweep(root, seeds)
    # The workers merge on their slots while others train: their share of the wall time is their
    # worker-seconds over the slots; the sweep-end merge holds up the whole sweep.
    compaction = sweep_end + workers / slots
    ok = re.search(r"ok (\d+), failed (\d+), diverged (\d+), missing (\d+)", output)
    files = {t: sum(1 for _ in (root / t).rglob("*.parquet")) for t in ("trials", "dims", "curves", "points")}
    first, best, rows = summary_latency(root)
    compute = compute_per_trial(seeds, slots, args.compute_sample)
    ours = wall * slots / trials - compute
    print(
        f"isosweep: {wall:.1f} s wall ({ok.group(0) if ok else 'no status line'}); compaction "
        f"{compaction:.1f} s ({100 * compaction / wall:.1f} % of the wall time): workers' merges {workers:.1f} "
        f"worker-s over {slots} slots, sweep-end merge {sweep_end:.1f} s"
    )
    print(
        f"isosweep: trials' own compute {compute * 1000:.1f} ms per trial (in-process, one thread); "
        f"overhead {ours:.3f} s per trial per slot"
    )
    print(f"isosweep: files left in the store's tables: {json.dumps(files)}")
    print(
        f"isosweep: @toy_summary ({rows} rows) right after the sweep: {first:.3f} s first run, {best:.3f} s best of 3"
    )
    if args.skip_plain:
        return
    plain_wall = plain_tune(trials, slots)
    plain = plain_wall * slots / trials
    print(f"plain Ray Tune: {trials} trivial trials in {plain_wall:.1f} s, overhead {plain:.3f} s per trial per slot")
    print(
        f"overhead ratio isosweep / plain Ray Tune: {ours / plain:.2f}x (wall {wall:.1f} s against {plain_wall:.1f} s)"
    )
    if not args.store:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
