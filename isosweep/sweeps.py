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
``force``, ``compact``, ``max_trials``, ``executor``: ``"ray"`` or ``"local"``). Bad input raises :class:`isosweep.UsageError` before
anything is written. A sweep prints its progress as the command does; the results are returned.

This is the one place that orchestrates a sweep (``isosweep.cli`` parses and prints around it).
Ray is imported only once a sweep needs the cluster (``planning.ray_modules``): planning a sweep with nothing to
run, reading a status, or a sweep with ``executor="local"`` (``isosweep.orchestrator.local``) starts no Ray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from isosweep.errors import UsageError
from isosweep.orchestrator.address import check_address
from isosweep.orchestrator.local import resume_local, run_local
from isosweep.orchestrator.options import check_executor
from isosweep.orchestrator.status import StoreStatus, known_sweeps, read_sidecar, store_status, sweep_counts
from isosweep.orchestrator.userdata import stage
from isosweep.planning import (
    PlannedSweep,
    PreparedSweep,
    StoreLike,
    check_sweep_name,
    open_store,
    plan_sweep,
    ray_modules,
    sweep_options,
)
from isosweep.store import Store
from isosweep.studies import get_study
from isosweep.trainers.kinds import kind_of

__all__ = ["PlannedSweep", "SweepInterrupted", "SweepResult", "open_store", "plan", "resume", "run", "status"]


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
    study: str | None = None
    """The study run (None for a resumed sweep)."""
    budget: str | None = None
    data_hash: str | None = None
    """The user's data file's, for a study that runs on one (``custom``)."""

    def summary(self) -> str | None:
        """The study's summary table over the ok trials (as ``isosweep run`` prints it when it
        ends), where the study has a summary and the run an ok trial; read from the store."""
        if not self.ok or self.study is None or self.budget is None:
            return None
        # The summary's SQL needs DuckDB (UsageError where it is not installed): imported on first use.
        from isosweep.orchestrator.summary import summary_table

        store = Store(self.store)
        if self.search:
            return summary_table(
                store, self.budget, "anomaly_search", {"study": self.study, "sweep": self.sweep}, limit=5
            )
        study = get_study(self.study)
        if study.summary is None:
            return None
        match = {"data_hash": self.data_hash} if self.data_hash is not None else {}
        return summary_table(
            store,
            self.budget,
            study.summary,
            {"study": study.records_as or study.name, **match},
            drop=study.summary_hide,
        )


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
    return plan_sweep(study, budget, where, seeds, store, sweep_options(options), dry_run=True).planned


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
    cluster at ``address``), or in this process with ``executor="local"``. Returns the planned
    trials' states after the run; SweepInterrupted (a KeyboardInterrupt) where it was stopped."""
    planned = plan_sweep(study, budget, where, seeds, store, sweep_options(options), dry_run=False)
    print(planned.planned.line, flush=True)
    if planned.spec is not None:
        return _run_search(planned)
    assert planned.plan is not None and planned.run is not None
    sweep, opened, run_options = planned.planned.sweep, planned.store, planned.run
    plan_ = planned.plan
    local = run_options.executor == "local"
    run_sweep = run_local if local else ray_modules()[1].run_sweep
    if plan_.bundles:
        if not local:
            cluster, _ = ray_modules()
            # Everything that can refuse the sweep is checked before its first write (the store's folder).
            reads_data_root = planned.user is None and any(kind_of(c).check is not None for c in plan_.to_run)
            cluster.prepare(opened, run_options, reads_data_root=reads_data_root)
        opened.create()
        if planned.user:
            run_options = replace(run_options, data_root=stage(opened, planned.user))
    try:
        counts = run_sweep(plan_, opened, run_options)
    except KeyboardInterrupt:
        raise SweepInterrupted(sweep, opened.url) from None
    result = _result(sweep, opened, counts, len(plan_.planned), len(plan_.complete), len(plan_.to_run))
    data_hash = planned.user.data_hash if planned.user is not None else None
    return replace(result, study=planned.study.name, budget=planned.budget, data_hash=data_hash)


def _run_search(planned: PreparedSweep) -> SweepResult:
    spec, history, templates, run_options = planned.spec, planned.history, planned.templates, planned.run
    assert spec is not None and history is not None and templates is not None and run_options is not None
    opened = planned.store
    remaining = max(0, spec.num_samples - history.own_done)
    cluster, launch = ray_modules()
    if remaining > 0:
        cluster.connect(run_options.address)
        cluster.prepare(opened, run_options, reads_data_root=True)  # a search's anomaly trials read the data root
        opened.create()
    try:
        counts = launch.run_search(spec, templates, history, opened, run_options)
    except KeyboardInterrupt:
        raise SweepInterrupted(spec.sweep, opened.url) from None
    total = sum(counts.values())
    trained = remaining * len(spec.seeds)
    result = _result(spec.sweep, opened, counts, total, max(0, total - trained), trained)
    return replace(result, search=True, study=planned.study.name, budget=planned.budget)


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
    its unfinished trials from their checkpoints. Options: ``address``, ``compact``, ``executor``
    (default: the one that ran the sweep)."""
    unknown = sorted(set(options) - {"address", "compact", "executor"})
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r} of resume; its options are: address, compact, executor")
    address, compact = options.get("address"), bool(options.get("compact", True))
    if sweep is not None:
        check_sweep_name(sweep)
    if options.get("executor") is not None:
        check_executor(str(options["executor"]), address, None)
    check_address(address)
    opened = open_store(store, for_writing=True, must_exist=True)
    name = _only_sweep(opened, sweep)
    sidecar = read_sidecar(opened, name)
    executor = options.get("executor") or ("ray" if address else sidecar.get("executor", "ray"))
    before, planned = sweep_counts(opened, name, sidecar)
    try:
        if executor == "local":
            counts, planned = resume_local(opened, name, sidecar, compact=compact)
        else:
            cluster, launch = ray_modules()
            cluster.connect(address)
            cluster.check_store_reachable_from_cluster(opened)
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
