"""Running sweeps from Python, as ``isosweep run``, ``resume`` and ``status`` do::

    import isosweep

    result = isosweep.run("toy", budget="smoke", where={"lam": 100}, store="results")
    result.ok, result.failed, result.diverged       # the planned trials' states after the run
    isosweep.plan("toy", budget="quick", store="results").to_run   # what would train, nothing run
    isosweep.resume("results", "toy-smoke")         # finish an interrupted sweep
    isosweep.status("results").rows                 # per study and budget: planned, ok, ...

Options are the ``run`` command's flags as keywords (``name``, ``fuse``, ``cpus_per_trial``,
``gpus_per_trial``, ``max_concurrent``, ``max_failures``, ``address``, ``data_root``, ``data``,
``features``, ``density_column``, ``latent_dim``, ``search``, ``num_samples``, ``lam_range``,
``force``, ``compact``, ``max_trials``). Bad input raises :class:`isosweep.UsageError` before
anything is written. A sweep prints its progress as the command does; the results are returned.

This is the one place that orchestrates a sweep (``isosweep.cli`` parses and prints around it).
Ray is imported only once a sweep needs the cluster (``_ray``): planning a sweep with nothing to
run, or reading a status, starts no Ray.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from types import ModuleType
from typing import Any

from isosweep.arguments import NAME, _gpu_share, _non_negative_int, _positive_int, _seed_count
from isosweep.errors import UsageError
from isosweep.orchestrator.address import check_address
from isosweep.orchestrator.options import MAX_TRIALS, RunOptions, check_local_cpus, check_size, local_slots, now_iso
from isosweep.orchestrator.plan import SweepPlan, make_plan, parse_fuse
from isosweep.orchestrator.search import SearchSpec, check_search, parse_range, read_history, template_configs
from isosweep.orchestrator.status import (
    StoreStatus,
    done_keys,
    known_sweeps,
    read_sidecar,
    store_status,
    sweep_counts,
)
from isosweep.orchestrator.summary import summary_table
from isosweep.orchestrator.userdata import UserData, load_user_data, stage
from isosweep.store import Store, default_store_url
from isosweep.studies import get_study
from isosweep.study import Study, check_inputs
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data import data_root as resolve_data_root
from isosweep.trainers.kinds import kind_of
from isosweep.where import parse_where

StoreLike = str | os.PathLike
"""A store: a local folder (str or path) or an fsspec URL such as ``s3://bucket/prefix``."""


def _ray() -> tuple[ModuleType, ModuleType]:
    """The modules that import Ray (``cluster`` and ``launch``), imported on first use: Ray takes
    seconds to import, and a plan with nothing to run, ``status`` or ``import isosweep`` need none."""
    from isosweep.orchestrator import cluster, launch

    return cluster, launch


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by Ctrl-C (SIGINT, SIGTERM, SIGHUP): its completed trials are kept."""

    def __init__(self, sweep: str, store: str) -> None:
        super().__init__(sweep, store)
        self.sweep = sweep
        self.store = store

    def hint(self) -> str:
        return (
            f"interrupted; completed trials are kept: finish the sweep with `isosweep resume {self.sweep} "
            f"--store {self.store}` (or run the same command again)"
        )


@dataclass(frozen=True)
class SweepOptions:
    """The options of ``run`` and ``plan`` (the ``isosweep run`` flags of the same names)."""

    name: str | None = None
    max_trials: int = MAX_TRIALS
    fuse: str = "auto"
    gpus_per_trial: float | None = None
    cpus_per_trial: int = 1
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


_CHECKS: dict[str, Callable[[str], Any]] = {
    "max_trials": _positive_int,
    "gpus_per_trial": _gpu_share,
    "cpus_per_trial": _positive_int,
    "max_concurrent": _positive_int,
    "max_failures": _non_negative_int,
    "latent_dim": _positive_int,
    "num_samples": _positive_int,
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
    name = checked.get("name")
    if name is not None and (not NAME.fullmatch(str(name)) or ".." in str(name)):
        raise UsageError(f"name {name!r} is not a plain name; use letters, digits, '.', '_' and '-', e.g. toy-smoke")
    if "fuse" in checked:
        checked["fuse"] = str(checked["fuse"])
    return SweepOptions(**checked)


def open_store(url: StoreLike | None, for_writing: bool, must_exist: bool = False) -> Store:
    """The store, checked without writing anything (``Store.check_usable``); ``must_exist``: a
    store that does not exist is an error (reading a mistyped path is not an empty answer)."""
    store = Store(os.fspath(url) if url is not None else default_store_url())
    store.check_usable(for_writing)
    if must_exist:
        store.require_existing()
    return store


# -- results ------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class SweepResult:
    """The planned trials of a sweep after ``run`` or ``resume``: ``ok``, ``failed``, ``diverged``,
    ``damaged`` (ok, but a table unreadable) and ``missing`` count them by state."""

    sweep: str
    store: str
    planned: int
    already_complete: int
    """Planned trials complete before the call, not trained again."""
    trained: int
    """Planned trials the call set out to train."""
    ok: int
    failed: int
    diverged: int
    damaged: int = 0
    missing: int = 0
    search: bool = False
    summary: str | None = None
    """The study's summary table over its ok trials (as the command prints it), where it has one."""


def _result(sweep: str, store: Store, counts: dict[str, int], planned: int, complete: int, trained: int) -> SweepResult:
    return SweepResult(
        sweep,
        store.url,
        planned,
        complete,
        trained,
        counts["ok"],
        counts["failed"],
        counts["diverged"],
        counts.get("damaged", 0),
        counts.get("missing", 0),
    )


# -- planning -----------------------------------------------------------------------------------


@dataclass
class _Sweep:
    """A sweep as planned: everything ``run`` needs after ``_plan``."""

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
    history: Any = None


def _planned_size(study: Study, budget: str, seeds: int | None, where: dict[str, tuple[Any, ...]]) -> int:
    """How many trials ``study.configs`` would plan, counted without building them."""
    n = len(where["seed"]) if "seed" in where else (seeds if seeds is not None else study.budget(budget).seeds)
    for axis in study.axes:
        n *= len(where.get(axis.name, study.axis_values(axis, budget)))
    return n


def _run_options(sweep: str, options: SweepOptions, force: bool = False) -> RunOptions:
    return RunOptions(
        sweep=sweep,
        cpus_per_trial=options.cpus_per_trial,
        gpus_per_trial=options.gpus_per_trial,
        max_concurrent=options.max_concurrent,
        max_failures=options.max_failures,
        address=options.address,
        force_since=now_iso() if force else None,
        data_root=resolve_data_root(options.data_root),
        compact=options.compact,
    )


def _plan(
    study_name: str,
    budget: str,
    where: str | Sequence[str] | Mapping[str, Any] | None,
    seeds: int | None,
    store: StoreLike | None,
    options: SweepOptions,
    dry_run: bool,
) -> _Sweep:
    """Check the request and plan the sweep; on a cluster (Ray connected) where it has trials to
    train and is to run (or an ``address`` is given)."""
    if seeds is not None:
        try:
            seeds = _seed_count(str(seeds))
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"seeds: {exc}") from None
    study = get_study(study_name)
    study.budget(budget)
    parsed = parse_where(study, where)
    fuse = parse_fuse(options.fuse)
    check_address(options.address)
    if options.search is not None or options.num_samples is not None or options.lam_range is not None:
        return _plan_search(study, budget, parsed, seeds, store, options, dry_run)
    check_size(_planned_size(study, budget, seeds, parsed), options.max_trials, f"study {study.name}")
    check_local_cpus(options.cpus_per_trial, options.address)
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
    run = _run_options(sweep, options, force=options.force and not dry_run)
    plan = make_plan(
        configs, complete, fuse, local_slots(options.cpus_per_trial, options.max_concurrent), options.force
    )
    if plan.to_run and (not dry_run or options.address is not None):
        # Trials to train on a cluster: planned for its slots and GPUs (a local dry run keeps
        # this machine's cores, as a local Ray would offer them).
        cluster, _ = _ray()
        cluster.connect(options.address)
        plan = cluster.cluster_plan(configs, complete, fuse, options.force, run)
    line = (
        f"{sweep}: {len(plan.planned)} trials planned, {len(plan.complete)} already complete, "
        f"{len(plan.to_run)} to run in {len(plan.bundles)} bundle(s); store {opened.url}"
    )
    planned = PlannedSweep(sweep, study.name, budget, opened.url, plan.planned, plan.complete, plan.bundles, line)
    return _Sweep(study, budget, options, opened, planned, plan=plan, run=run, user=user)


def _plan_search(
    study: Study,
    budget: str,
    where: dict[str, tuple[Any, ...]],
    seeds: int | None,
    store: StoreLike | None,
    options: SweepOptions,
    dry_run: bool,
) -> _Sweep:
    """``isosweep run anomaly --search optuna ...``: see ``isosweep.orchestrator.search``."""
    if options.search is None:
        raise UsageError("--num-samples and --lam-range belong to a search: add --search optuna")
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
    return _Sweep(
        study,
        budget,
        options,
        opened,
        planned,
        run=_run_options(sweep, options),
        spec=spec,
        templates=templates,
        history=history,
    )


def plan(
    study: str,
    *,
    budget: str,
    where: str | Sequence[str] | Mapping[str, Any] | None = None,
    seeds: int | None = None,
    store: StoreLike | None = None,
    **options: Any,
) -> PlannedSweep:
    """What ``run`` would do, as data (``isosweep run --dry-run``): nothing is trained or written.
    Planned on this machine's cores, or on the cluster at ``address`` where one is given."""
    return _plan(study, budget, where, seeds, store, sweep_options(options), dry_run=True).planned


# -- running ------------------------------------------------------------------------------------


def run(
    study: str,
    *,
    budget: str,
    where: str | Sequence[str] | Mapping[str, Any] | None = None,
    seeds: int | None = None,
    store: StoreLike | None,
    **options: Any,
) -> SweepResult:
    """Plan ``study`` at ``budget`` (restricted or extended by ``where``; ``seeds`` 0..N-1), skip
    the trials the store holds complete, and train the rest on Ray (a new local instance, or the
    cluster at ``address``). Returns the planned trials' states after the run; SweepInterrupted
    (a KeyboardInterrupt) where it was stopped."""
    planned = _plan(study, budget, where, seeds, store, sweep_options(options), dry_run=False)
    print(planned.planned.line, flush=True)
    if planned.spec is not None:
        return _run_search(planned)
    assert planned.plan is not None and planned.run is not None
    sweep, opened, run_options = planned.planned.sweep, planned.store, planned.run
    plan_ = planned.plan
    _, launch = _ray()
    if plan_.bundles:
        cluster, _ = _ray()
        # Everything that can refuse the sweep is checked before its first write (the store's folder).
        reads_data_root = planned.user is None and any(kind_of(c).check is not None for c in plan_.to_run)
        cluster.prepare(opened, run_options, reads_data_root=reads_data_root)
        opened.create()
        if planned.user:
            run_options = replace(run_options, data_root=stage(opened, planned.user))
    try:
        counts = launch.run_sweep(plan_, opened, run_options)
    except KeyboardInterrupt:
        raise SweepInterrupted(sweep, opened.url) from None
    result = _result(sweep, opened, counts, len(plan_.planned), len(plan_.complete), len(plan_.to_run))
    study_ = planned.study
    if study_.summary is not None and counts["ok"]:
        match = {"data_hash": planned.user.data_hash} if planned.user is not None else {}
        table = summary_table(
            opened,
            planned.budget,
            study_.summary,
            {"study": study_.records_as or study_.name, **match},
            drop=study_.summary_hide,
        )
        result = replace(result, summary=table)
    return result


def _run_search(planned: _Sweep) -> SweepResult:
    assert planned.spec is not None and planned.run is not None and planned.templates is not None
    spec, opened, run_options = planned.spec, planned.store, planned.run
    remaining = max(0, spec.num_samples - planned.history.own_done)
    cluster, launch = _ray()
    if remaining > 0:
        cluster.connect(run_options.address)
        cluster.prepare(opened, run_options, reads_data_root=True)  # a search's anomaly trials read the data root
        opened.create()
    try:
        counts = launch.run_search(spec, planned.templates, planned.history, opened, run_options)
    except KeyboardInterrupt:
        raise SweepInterrupted(spec.sweep, opened.url) from None
    total = sum(counts.values())
    trained = remaining * len(spec.seeds)
    result = replace(
        _result(spec.sweep, opened, counts, total, max(0, total - trained), trained),
        search=True,
    )
    if counts["ok"]:
        table = summary_table(
            opened, planned.budget, "anomaly_search", {"study": planned.study.name, "sweep": spec.sweep}, limit=5
        )
        result = replace(result, summary=table)
    return result


def _only_sweep(store: Store, sweep: str | None) -> str:
    if sweep is not None:
        return sweep
    known = known_sweeps(store)
    if len(known) != 1:
        raise UsageError(
            f"store {store.url!r} holds {len(known)} sweeps; name the one to resume"
            + (f": {', '.join(known)}" if known else " (start one with `isosweep run`)")
        )
    return known[0]


def resume(store: StoreLike | None, sweep: str | None = None, **options: Any) -> SweepResult:
    """Restore the interrupted sweep named ``sweep`` (the store's only sweep where None) and finish
    its unfinished trials from their checkpoints. Options: ``address``, ``compact``."""
    unknown = sorted(set(options) - {"address", "compact"})
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r} of resume; its options are: address, compact")
    address, compact = options.get("address"), bool(options.get("compact", True))
    check_address(address)
    opened = open_store(store, for_writing=True, must_exist=True)
    name = _only_sweep(opened, sweep)
    sidecar = read_sidecar(opened, name)
    before, planned = sweep_counts(opened, name, sidecar)
    cluster, launch = _ray()
    cluster.connect(address)
    cluster.check_store_reachable_from_cluster(opened)
    try:
        counts, planned = launch.resume_sweep(opened, name, sidecar, compact=compact)
    except KeyboardInterrupt:
        raise SweepInterrupted(name, opened.url) from None
    result = _result(name, opened, counts, planned, before["ok"], planned - before["ok"])
    return replace(result, search=sidecar.get("kind") == "search")


def status(store: StoreLike | None, sweep: str | None = None) -> StoreStatus:
    """The store's trials per study and budget (``isosweep status``): planned, ok, failed,
    diverged, damaged, missing and extra; with ``sweep``, only that sweep's planned trials."""
    opened = open_store(store, for_writing=False, must_exist=True)
    return store_status(opened, sweep)
