"""How a sweep runs (none of it changes a trial's result), and the checks of those options that
need no cluster. Pure: no Ray."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone

from isosweep.errors import UsageError

MAX_TRIALS = 10_000
"""The largest sweep ``isosweep run`` plans without ``--max-trials``: the biggest study at the paper
budget plans a few hundred trials, so ten thousand is a typo (``--seeds 100000000``) far more often
than a plan, and planning it alone would take minutes."""


@dataclass(frozen=True)
class RunOptions:
    """How to run a sweep (none of it changes a trial's result)."""

    sweep: str
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = 0.0
    """GPUs per Ray trial; None: one where the cluster has a GPU, else none (``gpus_for_trials``)."""
    max_concurrent: int | None = None
    max_failures: int = 2
    """Retries of a failing trial from its last checkpoint before it is recorded as failed."""
    address: str | None = None
    force_since: str | None = None
    data_root: str | None = None
    """Folder or fsspec URL of the real data sets (not part of any trial's identity)."""
    compact: bool = True
    """Merge the sweep's per-trial files into the store's compacted files when it ends
    (``isosweep.orchestrator.compact.compact_sweep``)."""
    executor: str = "ray"
    """What trains the bundles: ``ray`` (a Ray cluster, local or at ``address``) or ``local``
    (this process, one bundle after another: ``isosweep.orchestrator.local``)."""


EXECUTORS = ("ray", "local")
"""The executors of a sweep (``--executor``): Ray's is the default and the only one across machines."""


def check_executor(executor: str, address: str | None, max_concurrent: int | None) -> None:
    """Refuse an unknown executor, and the Ray-only options with the local executor."""
    if executor not in EXECUTORS:
        raise UsageError(f"--executor {executor!r}: use ray (the default) or local")
    if executor != "local":
        return
    if address is not None:
        raise UsageError(
            "--executor local trains in this process and never joins a cluster; leave out --address "
            "(or leave out --executor local to run on the Ray cluster there)"
        )
    if max_concurrent is not None:
        raise UsageError(
            "--max-concurrent sets the Ray trials run at once; the local executor trains one bundle at a "
            "time: leave it out (or leave out --executor local)"
        )


def gpus_for_trials(requested: float | None, cluster: dict[str, float]) -> float:
    """GPUs each Ray trial asks for: ``requested`` as given; None (a study that wants a GPU, with
    no --gpus-per-trial) asks for one where the cluster has a GPU and for none where it has not,
    so the same command runs on a laptop and on a GPU cluster."""
    if requested is not None:
        return float(requested)
    return 1.0 if cluster.get("GPU", 0.0) >= 1.0 else 0.0


def local_slots(cpus_per_trial: float, max_concurrent: int | None) -> int:
    """Ray trials a new local Ray instance runs at once: this machine's cores, as it offers them."""
    return max_concurrent or max(1, int((os.cpu_count() or 1) // cpus_per_trial))


def check_local_cpus(cpus_per_trial: float, address: str | None) -> None:
    """A local Ray instance gets this machine's cores: refuse a request it can never hold, before
    Ray starts."""
    if address is None and cpus_per_trial > (os.cpu_count() or 1):
        raise UsageError(
            f"--cpus-per-trial {cpus_per_trial:g} is more than this machine's {os.cpu_count()} CPU(s), "
            "so no trial could ever start; lower it (or run on a cluster with --address)"
        )


def check_size(planned: int, limit: int, what: str) -> None:
    """Refuse a plan of more than ``limit`` trials (``--max-trials``)."""
    if planned > limit:
        raise UsageError(
            f"{what} plans {planned:,} trials, more than the limit of {limit:,}; narrow it (--seeds, --where) "
            f"or raise the limit with --max-trials {planned}"
        )


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
