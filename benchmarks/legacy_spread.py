"""How far retrained float32 results drift from the stored ones across CPU kernel choices.

Retrains every ok trial of the legacy store (``tests/fixtures/legacy-store``) once per variant:
``ATEN_CPU_CAPABILITY`` = default, avx2, avx512, each with 1 and 2 torch threads, each variant
in a fresh process (the capability is read when torch starts). Prints, per variant, the largest
relative difference from the stored value and where it is, then the largest over all variants.
That number sets ``RTOL`` in ``tests/legacy_retrain.py``, from below.

``--mutations`` measures the bound from above instead: every trial retrained with each of the
smallest real changes (``MUTATIONS``: one more epoch, a learning rate 1 % higher, another seed),
and, per change, the smallest over the trials of the largest relative difference of a float
result: a tolerance must stay below it to tell that change from the stored result.

    .venv/bin/python benchmarks/legacy_spread.py [--capabilities default,avx2,avx512] [--threads 1,2]
    .venv/bin/python benchmarks/legacy_spread.py --mutations
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"


def _worker(threads: int) -> None:
    """Retrain every ok legacy trial; print {trial: {column: relative difference}} as JSON."""
    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(TESTS))
    from legacy_retrain import config_of, differences, ok_trials, retrain, trial_id

    out = {}
    for row in ok_trials():
        out[trial_id(row)] = differences(retrain(config_of(row)), row)
    print(json.dumps(out))


def _mutations() -> None:
    """Per mutation: the trial it moves least, and by how much (its largest float difference)."""
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(TESTS))
    from legacy_retrain import MUTATIONS, config_of, float_differences, mutated, ok_trials, retrain, trial_id

    for mutation in MUTATIONS:
        moved = []
        for row in ok_trials():
            diffs = float_differences(retrain(mutated(config_of(row), mutation)), row)
            column = max(diffs, key=lambda k: diffs[k], default="-")
            moved.append((diffs.get(column, 0.0), trial_id(row), column))
        least = min(moved)
        print(f"{mutation:<26} moves every trial by at least {least[0]:.2e} (least: {least[1]} {least[2]})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capabilities", default="default,avx2,avx512")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--mutations", action="store_true", help="measure the smallest real changes instead")
    parser.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mutations:
        _mutations()
        return 0
    if args.worker_threads is not None:
        _worker(args.worker_threads)
        return 0
    worst = (0.0, "", "", "")
    for cap in args.capabilities.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            env = dict(os.environ, ATEN_CPU_CAPABILITY=cap)
            proc = subprocess.run(
                [sys.executable, __file__, "--worker-threads", str(threads)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            diffs = json.loads(proc.stdout.strip().splitlines()[-1])
            cells = [(d, trial, col) for trial, cols in diffs.items() for col, d in cols.items()]
            largest = max(cells, default=(0.0, "-", "-"))
            variant = f"{cap}, {threads} thread(s)"
            print(
                f"{variant:<24} trials {len(diffs):3d}  values off {len(cells):4d}  "
                f"largest {largest[0]:.2e}  ({largest[1]} {largest[2]})"
            )
            worst = max(worst, (largest[0], variant, largest[1], largest[2]))
    print(f"largest relative difference over all variants: {worst[0]:.2e} ({worst[1]}: {worst[2]} {worst[3]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
