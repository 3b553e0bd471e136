"""What every trial of a sweep is handed beside its members, whichever executor runs it (Ray's or
the local one): the store, the sweep, the run's provenance, threads, data root and retry limits.
No Ray here."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from isosweep.orchestrator.options import RunOptions
from isosweep.store import Store


def git_revision() -> str | None:
    """The git revision of the code being run, where it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def ray_version() -> str | None:
    """The installed Ray's version, read from its metadata (Ray itself is not imported)."""
    try:
        return version("ray")
    except PackageNotFoundError:
        return None


def run_provenance(executor: str = "ray") -> dict[str, Any]:
    """The provenance columns that are the same for every trial of a run: the code's revision,
    and Ray's version where Ray runs the sweep (null in the local executor's rows)."""
    return {"git_rev": git_revision(), "ray_version": ray_version() if executor == "ray" else None}


def bundle_failures(bundles: Sequence[Sequence[Any]], max_failures: int) -> int:
    """Restarts of one bundle before it is given up on: each member may use up to
    ``max_failures`` retries of the whole bundle, and worker or node losses also count there."""
    largest = max((len(b) for b in bundles), default=1)
    return max_failures * largest + max_failures


def fixed_params(store: Store, options: RunOptions) -> dict[str, Any]:
    """The part of every trial's config (a Ray trial's, or the local executor's) that is the same
    for the whole sweep."""
    return {
        "store": os.path.abspath(store.url) if store.local else store.url,
        "sweep": options.sweep,
        "force_since": options.force_since,
        "provenance": run_provenance(options.executor),
        "threads": max(1, int(options.cpus_per_trial)),
        "data_root": options.data_root,
        "max_failures": options.max_failures,
        "compact": options.compact,
    }
