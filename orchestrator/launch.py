"""Running a sweep on the connected Ray cluster (``cluster.connect``): a planned sweep's bundles,
a search's points, or an interrupted sweep resumed; then the sweep's files merged and its stale
claims cleared, whichever way it ended."""

from __future__ import annotations

import json
from typing import Any

from ray import tune
from ray.tune.search.optuna import OptunaSearch

from isosweep.orchestrator.experiment import fit, record_lost_members, restore, tune_fit
from isosweep.orchestrator.finish import clear_stale_claims, compact_after_sweep
from isosweep.orchestrator.options import RunOptions
from isosweep.orchestrator.plan import SweepPlan
from isosweep.orchestrator.progress import Progress
from isosweep.orchestrator.search import OBJECTIVE, SearchHistory, SearchSpec, build_optuna_study, search_space
from isosweep.orchestrator.status import search_counts, status_counts, sweep_counts
from isosweep.orchestrator.sweep_params import bundle_failures, fixed_params
from isosweep.store import Store
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
                "ray_max_failures": bundle_failures(plan.bundles, options.max_failures),
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
            "ray_max_failures": bundle_failures([templates], options.max_failures),
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
