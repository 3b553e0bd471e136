"""Planning a sweep for ``isosweep.sweeps``: its options checked as the command line checks its
flags, the study's trials crossed and checked, the store opened, the trials already complete
skipped and the rest bundled, on this machine or on the connected cluster. Nothing is trained
or written here."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from types import ModuleType
from typing import Any

from isosweep.arguments import NAME, gpu_share, non_negative_int, positive_int, seed_count
from isosweep.errors import UsageError
from isosweep.orchestrator.address import check_address
from isosweep.orchestrator.local import local_plan
from isosweep.orchestrator.options import (
    MAX_TRIALS,
    RunOptions,
    check_executor,
    check_local_cpus,
    check_size,
    local_slots,
    now_iso,
)
from isosweep.orchestrator.plan import SweepPlan, make_plan, parse_fuse
from isosweep.orchestrator.search import (
    SearchHistory,
    SearchSpec,
    check_search,
    parse_range,
    read_history,
    template_configs,
)
from isosweep.orchestrator.status import done_keys
from isosweep.orchestrator.userdata import UserData, load_user_data
from isosweep.store import Store, default_store_url
from isosweep.studies import get_study
from isosweep.study import Study, check_inputs
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data import data_root as resolve_data_root
from isosweep.where import parse_where

StoreLike = str | os.PathLike
"""A store: a local folder (str or path) or an fsspec URL such as ``s3://bucket/prefix``."""


def ray_modules() -> tuple[ModuleType, ModuleType]:
    """The modules that import Ray (``cluster`` and ``launch``), imported on first use: Ray takes
    seconds to import, and a plan with nothing to run, ``status``, ``import isosweep`` and the
    local executor need none. UsageError where Ray is not installed."""
    try:
        from isosweep.orchestrator import cluster, launch
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in ("ray", "optuna"):
            raise
        raise UsageError(
            f"this sweep runs on Ray, and {exc.name.split('.')[0]} is not installed here: install it "
            "(pip install 'ray[tune]' optuna), or train in this process with --executor local"
        ) from None
    return cluster, launch


@dataclass(frozen=True)
class SweepOptions:
    """The options of ``run`` and ``plan`` (the ``isosweep run`` flags of the same names)."""

    name: str | None = None
    max_trials: int = MAX_TRIALS
    fuse: str = "auto"
    gpus_per_trial: float | None = None
    cpus_per_trial: int | None = None
    """Cores of each Ray trial (default 1), or the local executor's torch threads (default all)."""
    max_concurrent: int | None = None
    max_failures: int = 2
    address: str | None = None
    data_root: str | None = None
    data: str | None = None
    features: str | None = None
    density_column: str | None = None
    latent_dim: int | None = None
    search: str | None = None
    num_samples: int | None = None
    lam_range: str | None = None
    force: bool = False
    compact: bool = True
    executor: str = "ray"


_CHECKS: dict[str, Callable[[str], Any]] = {
    "max_trials": positive_int,
    "gpus_per_trial": gpu_share,
    "cpus_per_trial": positive_int,
    "max_concurrent": positive_int,
    "max_failures": non_negative_int,
    "latent_dim": positive_int,
    "num_samples": positive_int,
}
"""The options checked as the command line checks its flags (``isosweep.arguments``)."""


def sweep_options(options: Mapping[str, Any]) -> SweepOptions:
    """``options`` as SweepOptions, each checked as its flag is; UsageError naming a bad one."""
    known = {f.name for f in fields(SweepOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r}; the options are: {', '.join(sorted(known))}")
    checked = dict(options)
    for key, check in _CHECKS.items():
        if checked.get(key) is not None:
            try:
                checked[key] = check(str(checked[key]))
            except argparse.ArgumentTypeError as exc:
                raise UsageError(f"{key}: {exc}") from None
    if checked.get("name") is not None:
        check_sweep_name(str(checked["name"]))
    if "fuse" in checked:
        checked["fuse"] = str(checked["fuse"])
    return SweepOptions(**checked)


def check_sweep_name(name: str) -> None:
    """A sweep's name names a folder under ``<store>/ray/``: a plain name, as ``--name`` takes."""
    if not NAME.fullmatch(name) or ".." in name:
        raise UsageError(f"name {name!r} is not a plain name; use letters, digits, '.', '_' and '-', e.g. toy-smoke")


def open_store(url: StoreLike | None, for_writing: bool, must_exist: bool = False) -> Store:
    """The store, checked without writing anything (``Store.check_usable``); ``must_exist``: a
    store that does not exist is an error (reading a mistyped path is not an empty answer)."""
    store = Store(os.fspath(url) if url is not None else default_store_url())
    store.check_usable(for_writing)
    if must_exist:
        store.require_existing()
    return store


@dataclass(frozen=True)
class PlannedSweep:
    """What a sweep would do (``plan``; what ``isosweep run --dry-run`` prints)."""

    sweep: str
    study: str
    budget: str
    store: str
    planned: tuple[TrialConfig, ...]
    complete: frozenset[str]
    """Keys of the planned trials already complete in the store (skipped)."""
    bundles: tuple[tuple[TrialConfig, ...], ...]
    """The trials to train, as they would be bundled (none for a search: its points are drawn as it runs)."""
    line: str
    """The line that describes the plan, as ``isosweep run`` prints it."""
    search: bool = False

    @property
    def to_run(self) -> list[TrialConfig]:
        return [c for b in self.bundles for c in b]


@dataclass
class PreparedSweep:
    """A sweep as planned: everything ``run`` needs after ``plan_sweep``."""

    study: Study
    budget: str
    options: SweepOptions
    store: Store
    planned: PlannedSweep
    plan: SweepPlan | None = None
    run: RunOptions | None = None
    user: UserData | None = None
    spec: SearchSpec | None = None
    templates: list[TrialConfig] | None = None
    history: SearchHistory | None = None


def planned_size(study: Study, budget: str, seeds: int | None, where: dict[str, tuple[Any, ...]]) -> int:
    """How many trials ``study.configs`` would plan, counted without building them."""
    n = len(where["seed"]) if "seed" in where else (seeds if seeds is not None else study.budget(budget).seeds)
    for axis in study.axes:
        n *= len(where.get(axis.name, study.axis_values(axis, budget)))
    return n


def trial_cpus(options: SweepOptions) -> int:
    """``--cpus-per-trial``, or its default: 1 per Ray trial, every core for the local executor
    (it trains one bundle at a time, with all of this machine's cores)."""
    if options.cpus_per_trial is not None:
        return options.cpus_per_trial
    return (os.cpu_count() or 1) if options.executor == "local" else 1


def run_options(sweep: str, options: SweepOptions, force: bool = False) -> RunOptions:
    return RunOptions(
        sweep=sweep,
        executor=options.executor,
        cpus_per_trial=trial_cpus(options),
        gpus_per_trial=options.gpus_per_trial,
        max_concurrent=options.max_concurrent,
        max_failures=options.max_failures,
        address=options.address,
        force_since=now_iso() if force else None,
        data_root=resolve_data_root(options.data_root),
        compact=options.compact,
    )


def plan_sweep(
    study_name: str,
    budget: str,
    where: str | Sequence[str] | Mapping[str, Any] | None,
    seeds: int | None,
    store: StoreLike | None,
    options: SweepOptions,
    dry_run: bool,
) -> PreparedSweep:
    """Check the request and plan the sweep; on a cluster (Ray connected) where it has trials to
    train and is to run (or an ``address`` is given)."""
    if seeds is not None:
        try:
            seeds = seed_count(str(seeds))
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"seeds: {exc}") from None
    study = get_study(study_name)
    study.budget(budget)
    parsed = parse_where(study, where)
    fuse = parse_fuse(options.fuse)
    check_executor(options.executor, options.address, options.max_concurrent)
    check_address(options.address)
    if options.search is not None or options.num_samples is not None or options.lam_range is not None:
        return _plan_search(study, budget, parsed, seeds, store, options, dry_run)
    check_size(planned_size(study, budget, seeds, parsed), options.max_trials, f"study {study.name}")
    check_local_cpus(trial_cpus(options), options.address)
    user = load_user_data(
        study, options.data, options.features, options.density_column, options.latent_dim, options.data_root
    )
    try:
        configs = study.configs(budget, seeds, parsed, user.fields() if user else None)
    except ValueError as exc:
        raise UsageError(f"invalid trial settings: {exc}") from None
    if user is None:
        check_inputs(study, configs, resolve_data_root(options.data_root))
    else:
        print(user.describe(), flush=True)
    opened = open_store(store, for_writing=not dry_run)
    sweep = options.name or f"{study.name}-{budget}"
    complete = done_keys(opened, [c.key for c in configs])
    run = run_options(sweep, options, force=options.force and not dry_run)
    plan = make_plan(configs, complete, fuse, local_slots(trial_cpus(options), options.max_concurrent), options.force)
    if plan.to_run and options.executor == "local":
        plan = local_plan(configs, complete, fuse, options.force, run)
    elif plan.to_run and (not dry_run or options.address is not None):
        # Trials to train on a cluster: planned for its slots and GPUs (a local dry run keeps
        # this machine's cores, as a local Ray would offer them).
        cluster, _ = ray_modules()
        cluster.connect(options.address)
        plan = cluster.cluster_plan(configs, complete, fuse, options.force, run)
    line = (
        f"{sweep}: {len(plan.planned)} trials planned, {len(plan.complete)} already complete, "
        f"{len(plan.to_run)} to run in {len(plan.bundles)} bundle(s); store {opened.url}"
    )
    planned = PlannedSweep(sweep, study.name, budget, opened.url, plan.planned, plan.complete, plan.bundles, line)
    return PreparedSweep(study, budget, options, opened, planned, plan=plan, run=run, user=user)


def _plan_search(
    study: Study,
    budget: str,
    where: dict[str, tuple[Any, ...]],
    seeds: int | None,
    store: StoreLike | None,
    options: SweepOptions,
    dry_run: bool,
) -> PreparedSweep:
    """``isosweep run anomaly --search optuna ...``: see ``isosweep.orchestrator.search``."""
    if options.search is None:
        raise UsageError("--num-samples and --lam-range belong to a search: add --search optuna")
    if options.executor == "local":
        raise UsageError(
            "a search runs on Ray (its searcher proposes points as trials finish); leave out --executor local"
        )
    if options.force:
        raise UsageError("--force does not apply to a search; give the search a new --name to start it afresh")
    dataset = check_search(study, options.search, where, options.num_samples)
    num_samples = int(options.num_samples or 0)  # check_search refuses a search without it
    low, high = parse_range(options.lam_range)
    sweep = options.name or f"anomaly-search-{dataset}-{budget}"
    check_size(num_samples * (seeds or 1), options.max_trials, "the search")
    spec = SearchSpec(sweep, dataset, budget, tuple(range(seeds or 1)), num_samples, low, high)
    try:
        templates = template_configs(study, spec, where)
    except ValueError as exc:
        raise UsageError(f"invalid trial settings: {exc}") from None
    check_inputs(study, templates, resolve_data_root(options.data_root))
    opened = open_store(store, for_writing=not dry_run)
    history = read_history(opened, study, spec, where)
    remaining = max(0, spec.num_samples - history.own_done)
    line = (
        f"{sweep}: search of {dataset} at budget {budget} with {options.search} (TPE): {spec.num_samples} point(s) "
        f"of {len(spec.seeds)} seed(s), lambda1 and lambda2 log-uniform on [{low:g}, {high:g}]; "
        f"{history.own_done} done, {remaining} to run; {len(history.evaluated)} evaluated point(s) in the store "
        f"guide the sampler; store {opened.url}"
    )
    planned = PlannedSweep(sweep, study.name, budget, opened.url, (), frozenset(), (), line, search=True)
    return PreparedSweep(
        study,
        budget,
        options,
        opened,
        planned,
        run=run_options(sweep, options),
        spec=spec,
        templates=templates,
        history=history,
    )
