"""Running a sweep on the connected Ray cluster (``cluster.connect``): a planned sweep's bundles,
a search's points, or an interrupted sweep resumed; then the sweep's files merged and its stale
claims cleared, whichever way it ended."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from ray import tune
from ray.tune.search.optuna import OptunaSearch

from isosweep.errors import NoSpaceError, first_line, no_space, no_space_path
from isosweep.orchestrator.claims import Claims
from isosweep.orchestrator.compact import compact_sweep
from isosweep.orchestrator.experiment import fit, fixed_params, ray_max_failures, record_lost_members, restore, tune_fit
from isosweep.orchestrator.faults import compact_kill_point
from isosweep.orchestrator.options import RunOptions
from isosweep.orchestrator.plan import SweepPlan
from isosweep.orchestrator.progress import Progress
from isosweep.orchestrator.search import OBJECTIVE, SearchHistory, SearchSpec, build_optuna_study, search_space
from isosweep.orchestrator.status import search_counts, status_counts, sweep_counts
from isosweep.store import UNREADABLE_FIX, Store
from isosweep.trainers.config import TrialConfig


def run_sweep(plan: SweepPlan, store: Store, options: RunOptions) -> dict[str, int]:
    """Run the plan's bundles on Ray and return the final status counts of the planned trials."""
    try:
        if plan.bundles:
            param_space = {
                "bundle": tune.grid_search([json.dumps([c.to_dict() for c in b]) for b in plan.bundles]),
                **fixed_params(store, options),
            }
            sidecar = {
                "keys": [c.key for c in plan.planned],
                "ray_max_failures": ray_max_failures(plan.bundles, options.max_failures),
            }
            fit(
                store,
                options,
                "bundle",
                param_space,
                sidecar,
                Progress(total=len(plan.to_run), skipped=len(plan.complete)),
            )
    finally:
        # Every planned key, so that files left by an earlier run of these trials (one killed, or
        # one whose compaction was cut short) are merged too, even when nothing was left to run.
        compact_after_sweep(store, [c.key for c in plan.planned], options.sweep, options.compact)
        clear_stale_claims(store, [c.key for c in plan.planned])
    return status_counts(store, [c.key for c in plan.planned])


def run_search(
    spec: SearchSpec, templates: list[TrialConfig], history: SearchHistory, store: Store, options: RunOptions
) -> dict[str, int]:
    """Run the points of a search (``isosweep.orchestrator.search``) that it still owes: ``num_samples``
    less those it evaluated before; Optuna's TPE proposes them, starting from ``history``.
    Returns the status counts of every trial of this search."""
    remaining = spec.num_samples - history.own_done
    if remaining > 0:
        study = build_optuna_study(spec, history)
        searcher = OptunaSearch(
            space=search_space(spec),
            metric=OBJECTIVE,
            mode="max",
            sampler=study.sampler,
            storage=study._storage,  # private: OptunaSearch takes the storage, the study exposes no public getter
            study_name=spec.sweep,
        )
        param_space = {"templates": json.dumps([t.to_dict() for t in templates]), **fixed_params(store, options)}
        sidecar = {
            "search": {"dataset": spec.dataset, "budget": spec.budget},
            "ray_max_failures": ray_max_failures([templates], options.max_failures),
        }
        try:
            fit(
                store,
                options,
                "search",
                param_space,
                sidecar,
                Progress(total=remaining * len(templates), skipped=0),
                search_alg=searcher,
                num_samples=remaining,
            )
        finally:
            # A search's trial keys are known only as its points are drawn: merge every per-trial file.
            compact_after_sweep(store, None, options.sweep, options.compact)
            clear_stale_claims(store, None)
    return search_counts(store, options.sweep)


def resume_sweep(store: Store, sweep: str, sidecar: dict[str, Any], compact: bool = True) -> tuple[dict[str, int], int]:
    """Restore an interrupted sweep's Ray experiment (``sidecar``: its record, ``status.read_sidecar``)
    and finish its unfinished and errored trials from their checkpoints, then (``compact``) merge
    its per-trial files. Returns the status counts and the number of planned trials."""
    tuner = restore(store, sweep, sidecar)
    try:
        grid = tune_fit(tuner, store)
        record_lost_members(grid, store, sweep)
    finally:
        compact_after_sweep(store, sidecar.get("keys"), sweep, compact)
        clear_stale_claims(store, sidecar.get("keys"))
    return sweep_counts(store, sweep, sidecar)


def clear_stale_claims(store: Store, keys: Sequence[str] | None) -> None:
    """Remove the dead or expired claims (a stopped or killed run's) of the sweep's keys (every
    key where None) when the sweep ends, so that none outlives the run after the one that left it.
    A failure is only reported: a stale claim delays a later run by one lease at most."""
    try:
        Claims(store).clear_stale(keys)
    except Exception as exc:
        print(
            f"isosweep: warning: clearing stale claims failed ({type(exc).__name__}: {first_line(exc)}); "
            "they expire by themselves",
            file=sys.stderr,
        )


def compact_after_sweep(store: Store, keys: Sequence[str] | None, sweep: str, enabled: bool = True) -> None:
    """Merge the per-trial files of the sweep's trials (``keys``; every per-trial file where None)
    into the store's compacted files, as every sweep does when it ends or is interrupted cleanly.
    A failure here loses nothing (each trial is whole in its own files): it is reported, not raised."""
    if not enabled:
        return
    start = time.perf_counter()
    try:
        report = compact_sweep(store, keys, kill=compact_kill_point)
    except Exception as exc:
        if no_space(exc):
            raise NoSpaceError(no_space_path(exc) or store.url) from None
        print(
            f"isosweep: warning: merging the sweep's files failed ({type(exc).__name__}: {first_line(exc)}); its trials "
            f"are whole in their own files: run `isosweep compact --store {store.url}` to merge them",
            file=sys.stderr,
        )
        return
    if report.written_files:
        print(
            f"{sweep}: merged {report.merged_files} per-trial and compacted file(s) into {report.written_files} "
            f"in {time.perf_counter() - start:.1f}s",
            flush=True,
        )
    if report.skipped_corrupt:
        print(
            f"isosweep: warning: {len(report.skipped_corrupt)} unreadable file(s) left unmerged: "
            f"{', '.join(store.uri(p) for p in report.skipped_corrupt)}; {UNREADABLE_FIX} "
            "(`isosweep status` lists them)",
            file=sys.stderr,
        )
