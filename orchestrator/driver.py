"""The Ray Tune driver: the only module of the project that imports Ray.

Each Ray trial trains one bundle of trials (see ``isosweep.orchestrator.plan``) and writes every member's
rows to the store from the worker. The store, not Ray's experiment state, is the record of what
is done: members already complete are skipped, so re-running or resuming never repeats work.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# Tune's default result loggers (JSON, CSV, TensorBoard per trial) cost time per report and
# duplicate what the store records; switch them off before Ray reads its settings.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# Every finished trial forces a snapshot of the experiment state (checkpoints are kept to one);
# that is the price of resuming exactly, so Tune's warning about it is only noise here.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")

import ray  # noqa: E402
import torch  # noqa: E402
from ray import tune  # noqa: E402

from isosweep.errors import NoSpaceError, UsageError, first_line, no_space, no_space_path  # noqa: E402
from isosweep.interrupts import stop_signals_as_ctrl_c  # noqa: E402
from isosweep.orchestrator.claims import Claims  # noqa: E402
from isosweep.orchestrator.faults import Faults, worker_env  # noqa: E402
from isosweep.orchestrator.plan import SweepPlan, make_plan  # noqa: E402
from isosweep.store import UNREADABLE_FIX, Store  # noqa: E402
from isosweep.trainers.config import TrialConfig  # noqa: E402
from isosweep.trainers.kinds import fusable  # noqa: E402
from isosweep.trainers.records import TrialResult, TrialStatus  # noqa: E402
from isosweep.trainers.run import failed_result, run_bundle, run_trial  # noqa: E402

CHECKPOINT_FILE = "state.pt"


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


def run_provenance() -> dict[str, Any]:
    return {"git_rev": git_revision(), "ray_version": ray.__version__}


# -- worker side ------------------------------------------------------------------------------


def _is_done(state: Any, force_since: str | None) -> bool:
    """Whether a member needs no training: complete in the store (``StoredTrial.complete``: ok,
    with every table readable), and under ``--force`` finished since the sweep began."""
    if state is None or not state.complete:
        return False
    if force_since is None:
        return True
    return state.finished_at is not None and state.finished_at >= datetime.fromisoformat(force_since)


def _save_and_report(metrics: dict[str, Any], payload: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as d:
        torch.save(payload, os.path.join(d, CHECKPOINT_FILE))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


def _load_checkpoint(checkpoint: Any) -> dict[str, Any] | None:
    """The payload of a bundle's Ray checkpoint; None (train from the start) where the file is
    missing, empty or cut short, as a write into a full disk leaves it: a damaged checkpoint costs
    the progress it held, never the run."""
    try:
        with checkpoint.as_directory() as d:
            # Checkpoints hold CPU tensors (``isosweep.trainers.device.to_cpu``): any node or device resumes them.
            return torch.load(os.path.join(d, CHECKPOINT_FILE), weights_only=False, map_location="cpu")
    except Exception as exc:
        if no_space(exc):
            raise
        print(
            f"isosweep: warning: unreadable checkpoint {checkpoint.path} ({type(exc).__name__}: {first_line(exc)}); "
            "its bundle trains from the start",
            file=sys.stderr,
        )
        return None


def _units(members: list[TrialConfig]) -> list[list[TrialConfig]]:
    """What trains together: all pending members as one vectorised unit where they can fuse,
    else one member at a time."""
    if len(members) > 1 and fusable(members):
        return [members]
    return [[m] for m in members]


def trial_device() -> str:
    """The device of this Ray trial: ``cuda`` when Ray gave it a GPU (Ray then sets
    CUDA_VISIBLE_DEVICES to that GPU, which torch sees as ``cuda:0``), else ``cpu``."""
    return "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"


def _run_unit(
    unit: list[TrialConfig], report: Any, state: dict[str, Any] | None, data_root: str | None, where: str
) -> list[TrialResult]:
    if len(unit) == 1:
        return [run_trial(unit[0], report, state, data_root, where)]
    return run_bundle(unit, report, state, data_root, where)


NO_SPACE = "no_space"
"""The report of a worker whose write found a disk full: the file (or the store), for the driver,
which then stops the sweep (``_NoSpaceStop``) instead of letting Ray retry into the same full disk."""


def _ends_on_full_disk(train: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """``train``, except that a full disk ends it with a ``NO_SPACE`` report, not an exception:
    Ray would retry an exception from the last checkpoint, whose writes fill the same disk."""

    @functools.wraps(train)
    def trainable(config: dict[str, Any]) -> None:
        try:
            train(config)
        except Exception as exc:
            if not no_space(exc):
                raise
            objective: dict[str, float] = {}
            if "templates" in config:
                from isosweep.orchestrator.search import OBJECTIVE

                # Tune requires the searcher's metric in every result; the stopped point's value
                # is never used again (the next run rebuilds the search's history from the store).
                objective[OBJECTIVE] = 0.0
            tune.report({NO_SPACE: no_space_path(exc) or config["store"], "member": 0, "trial_key": "", **objective})

    return trainable


@_ends_on_full_disk
def bundle_trainable(config: dict[str, Any]) -> None:
    """Train one bundle: its members not yet complete, fused into one vectorised model where they
    can be, resuming from the bundle's checkpoint.

    A unit that raises is retried by Ray from its last checkpoint, up to ``max_failures`` times (the
    attempt count travels in the checkpoint); after that its members are recorded as ``failed``
    and the bundle goes on.
    """
    _train_members(config, [TrialConfig.from_dict(d) for d in json.loads(config["bundle"])])


@_ends_on_full_disk
def search_trainable(config: dict[str, Any]) -> None:
    """Evaluate one point (lambda1, lambda2) of a search: train its seeds' trials as a bundle,
    then report their mean validation F1 (``isosweep.orchestrator.search``) as the searcher's objective.

    Every report carries the objective (Optuna's searcher reads it from each result): the mean
    over the seeds finished so far, and over all of them in the last report.
    """
    from isosweep.orchestrator.search import OBJECTIVE, at_point, point_objective

    templates = [TrialConfig.from_dict(d) for d in json.loads(config["templates"])]
    members = at_point(templates, float(config["lam1"]), float(config["lam2"]))
    values: dict[str, float | None] = {}

    def objective() -> dict[str, float]:
        return {OBJECTIVE: point_objective(values.values())}

    def finished(result: TrialResult) -> None:
        values[result.key] = result.scalars.get("val_f1") if result.status == TrialStatus.OK else None

    _train_members(config, members, objective, finished)
    # Seeds that were complete before this point started were skipped: read them from the store.
    rows = Store(config["store"], warn=False).trial_rows(["val_f1"], [m.key for m in members])
    for m in members:
        row = rows.get(m.key)
        values[m.key] = row["val_f1"] if row is not None and row["status"] == TrialStatus.OK.value else None
    tune.report({**objective(), "point_done": 1, "member": 0, "trial_key": members[0].key})


def _train_members(
    config: dict[str, Any],
    members: list[TrialConfig],
    extra: Callable[[], dict[str, Any]] = dict,
    finished: Callable[[TrialResult], None] = lambda result: None,
) -> None:
    """Train the members not yet complete and write each one's rows to the store; ``extra``
    adds metrics to every report, ``finished`` sees every result once it is written."""
    torch.set_num_threads(int(config.get("threads", 1)))
    faults = Faults.from_env()
    store = Store(config["store"], warn=False)  # the driver names unreadable files; its workers do not
    index = {cfg.key: i for i, cfg in enumerate(members)}
    restored: dict[str, Any] | None = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        restored = _load_checkpoint(checkpoint)

    def complete(keys: list[str]) -> set[str]:
        """Which of ``keys`` the store holds complete now (listed afresh: ``Store.list_files``)."""
        states = store.trial_states(keys)
        return {k for k in keys if _is_done(states.get(k), config.get("force_since"))}

    done = complete([m.key for m in members])
    pending = [cfg for cfg in members if cfg.key not in done]
    where = trial_device()
    # Claims keep a key from being trained by two drivers at once (isosweep.orchestrator.claims).
    claims = Claims(store)
    # Merge each unit's files once written (``compact.merge_written``); the keys stay claimed until then.
    merge = bool(config.get("compact", True))
    try:
        for unit in claims.units(pending, lambda c: c.key, _units, complete):
            keys = [c.key for c in unit]
            resuming = restored is not None and restored["keys"] == keys
            attempt = int(restored["attempts"]) if resuming and restored else 0
            last: dict[str, Any] = {"state": restored["state"] if resuming and restored else None}

            def report(
                metrics: dict[str, float],
                make_checkpoint: Any,
                keys: list[str] = keys,
                attempt: int = attempt,
                last: dict[str, Any] = last,
            ) -> None:
                last["state"] = make_checkpoint()
                _save_and_report(
                    {**metrics, "member": index[keys[0]], "trial_key": keys[0], "members": len(keys), **extra()},
                    {"keys": keys, "state": last["state"], "attempts": attempt},
                )
                for key in keys:
                    faults.maybe_raise(key, int(metrics["progress"]), attempt)

            try:
                results = _run_unit(unit, report, last["state"], config.get("data_root"), where)
            except Exception as exc:
                if no_space(exc):
                    raise  # a retry would write into the same full disk: the sweep stops (``_ends_on_full_disk``)
                if attempt < int(config.get("max_failures", 0)):
                    # Hand the retry to Ray: it restarts this bundle from the checkpoint saved here,
                    # which holds the unit's last progress and its attempt count.
                    _save_and_report(
                        {"member": index[keys[0]], "trial_key": keys[0], "retrying": 1, **extra()},
                        {"keys": keys, "state": last["state"], "attempts": attempt + 1},
                    )
                    raise
                results = [failed_result(cfg, exc) for cfg in unit]
            written: list[list[Any]] = []
            files: list[tuple[str, str, Any]] = []
            last_report = time.monotonic()
            for result in results:
                if faults.kill_in_write is not None:
                    store.before_commit = faults.write_hook(len(store.completed_keys()))
                if not claims.still_held(result.key):
                    continue  # this worker stalled past its lease and another took the key over: it writes
                written_files = store.write_result(result, config["sweep"], config["provenance"])
                if merge:
                    files += written_files  # the rows stay in memory until the unit's merge
                else:
                    claims.release(result.key)
                finished(result)
                written.append([index[result.key], result.key, result.status.value, result.wall_s])
                if time.monotonic() - last_report >= FINISHED_REPORT_S:
                    _report_finished(written, extra)
                    last_report = time.monotonic()
            merged = _merge_unit(store, files, claims) if merge else {}
            _report_finished(written, extra, merged)
    finally:
        claims.close()


FINISHED_REPORT_S = 1.0
"""How often a worker reports the members it has written (a fused unit writes hundreds a second;
each Ray Tune report is a round trip to the driver, carrying the Ray trial's whole config)."""


def _report_finished(
    written: list[list[Any]], extra: Callable[[], dict[str, Any]], merged: dict[str, float] | None = None
) -> None:
    """One report of the members written since the last: ``finished`` lists (member index, key,
    status, wall seconds) of each; ``merged``, what the unit's merge did. Empties ``written``."""
    if not written and not merged:
        return
    last = written[-1] if written else [0, ""]
    tune.report({"member": last[0], "trial_key": last[1], "finished": list(written), **(merged or {}), **extra()})
    written.clear()


def _merge_unit(store: Store, files: list[tuple[str, str, Any]], claims: Claims) -> dict[str, float]:
    """Merge the unit's per-trial files into compacted ones, then release the unit's claims.
    A failure loses nothing (the rows stay in their own files, for the sweep-end compaction):
    it is logged, not raised. Returns the merge's counts and seconds, for the driver's summary."""
    from isosweep.orchestrator.compact import merge_written
    from isosweep.orchestrator.faults import compact_kill_point

    start = time.perf_counter()
    try:
        report = merge_written(store, files, kill=lambda phase: compact_kill_point(f"worker-{phase}"))
        return {
            "merged_files": report.merged_files,
            "merged_into": report.written_files,
            "merged_s": time.perf_counter() - start,
        }
    except Exception as exc:
        if no_space(exc):
            raise  # the sweep stops (``_ends_on_full_disk``): later writes would fail alike
        print(
            f"isosweep: warning: merging a unit's files failed ({type(exc).__name__}: {first_line(exc)}); "
            "the sweep's end merges them",
            file=sys.stderr,
        )
        return {}
    finally:
        for key in {os.path.basename(path)[: -len(".parquet")] for table, path, _ in files if table == "trials"}:
            claims.release(key)


def members_of(config: dict[str, Any]) -> list[TrialConfig]:
    """The trials one Ray trial trains: a bundle's members, or a search point's seeds."""
    if "bundle" in config:
        return [TrialConfig.from_dict(d) for d in json.loads(config["bundle"])]
    from isosweep.orchestrator.search import at_point

    templates = [TrialConfig.from_dict(d) for d in json.loads(config["templates"])]
    return at_point(templates, float(config["lam1"]), float(config["lam2"]))


# -- driver side ------------------------------------------------------------------------------


def member_steps(cfg: TrialConfig) -> int:
    """A trial's training length in the units its progress reports count: iterations for the
    kinds that train by iterations, else epochs."""
    return int(cfg.iterations or cfg.epochs)


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return (
        f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
        if seconds >= 3600
        else (f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s")
    )


@dataclass
class Progress(tune.Callback):
    """The sweep's display, readable in a log file (``ray job logs``, CI): one line per finished
    trial, and while bundles train, at most one line every ``every_s`` seconds with each running
    bundle's progress and member-samples/s and an ETA from the measured throughput.

    Work is counted in member-steps (a member's epochs, or iterations): the sweep's total from
    every bundle's members, the work done from the bundles' progress reports and finished members.
    The ETA divides the work left by the sweep's throughput: the sum over the running bundles of
    each one's rate between its last two reports, so neither Ray's start-up nor a bundle that has
    only begun distorts it."""

    total: int
    skipped: int
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "failed": 0, "diverged": 0})
    started: float = field(default_factory=time.monotonic)
    points: int = 0
    """Search points finished (a search's trial is one point, its seeds the members)."""
    best: float = float("-inf")
    every_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _work: dict[str, int] = field(default_factory=dict)
    """Per Ray trial: its members' member-steps in all."""
    _finished: dict[str, int] = field(default_factory=dict)
    """Per Ray trial: member-steps of its finished members."""
    _partial: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per Ray trial: its running unit's last report (members, progress, steps, samples, time)."""
    _members: dict[str, list[TrialConfig]] = field(default_factory=dict)
    """Per Ray trial: its members, parsed from its config once."""
    _rate: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Per Ray trial: (member-steps/s, member-samples/s) between its last two reports."""
    _last_line: float = float("-inf")
    merged: dict[str, float] = field(default_factory=lambda: {"merged_files": 0, "merged_into": 0, "merged_s": 0.0})
    """What the workers' merges of their units' files did, summed (``_merge_unit``)."""

    def __post_init__(self) -> None:
        super().__init__()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self.merged["merged_into"]:
            print(
                f"workers merged {self.merged['merged_files']:.0f} per-trial file(s) into "
                f"{self.merged['merged_into']:.0f} in {self.merged['merged_s']:.1f}s (worker time)",
                flush=True,
            )

    # -- work -------------------------------------------------------------------------------------
    def _trial_work(self, trial: Any) -> int:
        if trial.trial_id not in self._work:
            self._work[trial.trial_id] = sum(member_steps(m) for m in self.members(trial))
        return self._work[trial.trial_id]

    def done_work(self) -> float:
        """Member-steps done: finished members in full, running units by their last report."""
        running = sum(p["members"] * p["progress"] for p in self._partial.values())
        return sum(self._finished.values()) + running

    def eta(self, trials: list) -> float | None:
        """Seconds left at the running bundles' measured throughput, or None before any bundle
        has reported twice."""
        running = [t for t in trials if t.status == "RUNNING"]
        rates = [self._rate[t.trial_id][0] for t in running if t.trial_id in self._rate]
        if not rates or sum(rates) <= 0:
            return None
        # Running bundles not measured yet (just started, or between units) run about as fast as
        # the measured ones: the slots are alike.
        rate = sum(rates) * len(running) / len(rates)
        total = sum(self._trial_work(t) for t in trials)
        return max(0.0, total - self.done_work()) / rate

    # -- Ray Tune's callback ------------------------------------------------------------------------
    def members(self, trial: Any) -> list[TrialConfig]:
        """The members of a Ray trial, parsed once (a fused bundle's config holds thousands)."""
        if trial.trial_id not in self._members:
            self._members[trial.trial_id] = members_of(trial.config)
        return self._members[trial.trial_id]

    @staticmethod
    def describe(member: TrialConfig) -> str:
        values = member.to_dict()
        return " ".join(
            f"{k}={values[k]:g}" if isinstance(values[k], float) else f"{k}={values[k]}"
            for k in ("dataset", "loss", "lam", "lam1", "lam2", "seed")
            if values.get(k) is not None
        )

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if NO_SPACE in result:
            return  # the sweep stops (``_NoSpaceStop``) and the command says why
        members = self.members(trial)
        member = members[result["member"]]
        if result.get("point_done"):
            self.points += 1
            from isosweep.orchestrator.search import OBJECTIVE

            self.best = max(self.best, float(result[OBJECTIVE]))
            what = self.describe(member).replace(f" seed={member.seed}", "")
            print(
                f"point {self.points}: {what} mean val_f1 {result[OBJECTIVE]:.4f} (best so far {self.best:.4f})",
                flush=True,
            )
            return
        if result.get("retrying"):
            self._partial.pop(trial.trial_id, None)
            print(
                f"retry    {result['trial_key']} {self.describe(member)}: failed, continuing from its last checkpoint",
                flush=True,
            )
            return
        if "finished" in result:
            lines = [
                self._finished_member(trials, trial, members[i], key, status, wall_s)
                for i, key, status, wall_s in result["finished"]
            ]
            if lines:
                print("\n".join(lines), flush=True)
            for name in self.merged:
                self.merged[name] += result.get(name, 0)
        elif "progress" in result:
            self._training(trials, trial, result, member)

    def _finished_member(
        self, trials: list, trial: Any, member: TrialConfig, key: str, status: str, wall_s: float
    ) -> str:
        """Count one member written to the store; its line."""
        # A unit's results are written one by one once it has trained: each member written counts in
        # full from now on, in place of its share of the unit's last report.
        unit = self._partial.get(trial.trial_id)
        if unit is not None:
            unit["members"] -= 1
            if unit["members"] <= 0:
                del self._partial[trial.trial_id]
        self._finished[trial.trial_id] = self._finished.get(trial.trial_id, 0) + member_steps(member)
        self.counts[status] = self.counts.get(status, 0) + 1
        finished = sum(self.counts.values())
        eta = self.eta(trials)
        if eta is None:  # no progress report yet (short trials): by finished trials instead
            eta = (self.clock() - self.started) / finished * max(0, self.total - finished)
        running = sum(1 for t in trials if t.status == "RUNNING")
        return (
            f"[{finished}/{self.total}] {status:<8} {key} {self.describe(member)} ({wall_s:.2f}s) "
            f"| ok {self.counts['ok']} failed {self.counts['failed']} diverged {self.counts['diverged']} "
            f"skipped {self.skipped} running {running} | eta {_duration(eta)}"
        )

    def _training(self, trials: list, trial: Any, result: dict, member: TrialConfig) -> None:
        """A progress report from inside a bundle: record it, and print a line if one is due."""
        now = self.clock()
        last = self._partial.get(trial.trial_id)
        report = {
            "members": float(result.get("members", 1)),
            "progress": float(result["progress"]),
            "steps": float(member_steps(member)),
            "samples": float(result.get("samples", 0.0)),
            "time": now,
        }
        if last is not None and last["progress"] < report["progress"] and now > last["time"]:
            # Between two reports of one unit (a bundle's next unit starts again from zero).
            seconds = now - last["time"]
            self._rate[trial.trial_id] = (
                report["members"] * (report["progress"] - last["progress"]) / seconds,
                (report["samples"] - last["samples"]) / seconds,
            )
        self._partial[trial.trial_id] = report
        if now - self._last_line < self.every_s:
            return
        self._last_line = now
        total = sum(self._trial_work(t) for t in trials)
        parts = []
        for number, t in enumerate(trials):
            p = self._partial.get(t.trial_id)
            if p is None or t.status != "RUNNING":
                continue
            rate = self._rate.get(t.trial_id)
            shown = f"{rate[1]:,.0f} member-samples/s" if rate is not None else "member-samples/s after its next report"
            parts.append(f"bundle {number}: {p['progress']:.0f}/{p['steps']:.0f} x {p['members']:.0f} members, {shown}")
        eta = self.eta(trials)
        print(
            f"progress {100.0 * self.done_work() / max(1, total):.0f}% of {total:,} member-steps | "
            + " | ".join(parts)
            + f" | eta {_duration(eta) if eta is not None else 'after the next report'}",
            flush=True,
        )


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


def start_ray(address: str | None) -> None:
    """Connect to the cluster at ``address``, or start a local Ray sized to this machine."""
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {
        "logging_level": logging.WARNING,
        "include_dashboard": False,
        "logging_config": ray.LoggingConfig(log_level="WARNING"),
    }
    if worker_env():
        kwargs["runtime_env"] = {"env_vars": worker_env()}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            # "local" always starts a new instance, never joins another Ray found on this machine.
            ray.init(address="local", num_cpus=os.cpu_count(), **kwargs)
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError, timeouts: all mean "not there"
        raise UsageError(
            f"cannot connect to Ray at {address or 'a new local instance'}: {first_line(exc)}; "
            "check the address (ray status on the head node prints it)"
        ) from None
    # ray.init replaced the SIGTERM handler (with one that exits at once, and natively one that
    # aborts with a stack dump): SIGTERM and SIGHUP stop the sweep as Ctrl-C does instead.
    stop_signals_as_ctrl_c()
    # Per-trial result files are switched off (the store has the results), so the result grid's
    # attempt to read them would warn once per bundle.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    # On Ctrl-C Tune stops gracefully and suggests `Tuner.restore(...)`; isosweep says instead how
    # to finish the sweep (`isosweep resume NAME`, see ``interrupted``).
    tune_logger = logging.getLogger("ray.tune.tune")
    if not any(isinstance(f, _TuneInterruptHints) for f in tune_logger.filters):
        tune_logger.addFilter(_TuneInterruptHints())


_STOP_SIGNAL = threading.Event()
"""Set when Tune received Ctrl-C (SIGINT) and ended its run early."""


class _TuneInterruptHints(logging.Filter):
    """Drops Tune's messages about an interrupted run, which point at Ray's own restore API, and
    notes the one that tells of Ctrl-C: Tune handles SIGINT itself and returns from ``fit`` as if
    the run had ended, and that message is the only sign of it."""

    HINTS = ("Stop signal received", "has been interrupted", "Trials did not complete")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Stop signal received" in message:
            _STOP_SIGNAL.set()
            _forward_worker_output(False)
        return not any(h in message for h in self.HINTS)


_WORKER_OUTPUT = "ray_print_logs"
"""The name under which ``ray.init`` registers the printer of the workers' output in the driver."""

_muted_printers: list[tuple[str, Any]] = []
"""The printers taken out of Ray's dispatcher while a stopped run ends, to put back for the next."""


def _forward_worker_output(on: bool) -> None:
    """Print the workers' stdout and stderr in the driver (Ray's default), or stop doing so. A
    stopped run stops printing them: Tune's stopping of the trials sends the workers SIGTERM, and a
    worker caught inside a clean-up prints Ray's exit traceback, which would reach the user's
    terminal beside the one line that says how to finish. Ray has no public switch for this after
    ``ray.init``; where its private dispatcher is not found, output is left as Ray prints it."""
    try:
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
    except ImportError:
        return
    handlers = getattr(dispatcher, "handlers", None)
    if not isinstance(handlers, list):
        return
    if on:
        # A Ray started anew since (ray.init) registered a printer of its own: keep only that one.
        if not any(name == _WORKER_OUTPUT for name, _ in handlers):
            for name, printer in _muted_printers:
                dispatcher.add_handler(name, printer)
        _muted_printers.clear()
    else:
        _muted_printers.extend(pair for pair in handlers if pair[0] == _WORKER_OUTPUT)
        dispatcher.remove_handler(_WORKER_OUTPUT)


def interrupted(grid: Any) -> bool:
    """Whether Tune stopped early (Ctrl-C): it said so (``_STOP_SIGNAL``), or a Ray trial is left
    neither terminated nor errored."""
    return _STOP_SIGNAL.is_set() or grid.num_terminated + grid.num_errors < len(grid)


def node_shapes() -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """The resources of each alive node of the connected cluster, and of each node type its
    autoscaler may still start (empty where the cluster publishes no autoscaler config)."""
    nodes = [dict(n.get("Resources", {})) for n in ray.nodes() if n.get("Alive")]
    types: list[dict[str, float]] = []
    try:
        from ray._private.state import state

        config = state.get_cluster_config()
        for group in config.node_group_configs if config is not None else ():
            if group.max_count != 0:
                types.append({k: float(v) for k, v in group.resources.items()})
    except Exception:  # an older or newer Ray without this API: check the nodes alone
        types = []
    return nodes, types


def autoscaled_types() -> list[tuple[dict[str, float], int]]:
    """Each node type the connected cluster's autoscaler may start, with the most nodes of it
    (its ``max_workers``; a negative count is unbounded and counts as one node), or [] where the
    cluster publishes no autoscaler config (a local instance, a hand-made cluster)."""
    try:
        from ray._private.state import state

        config = state.get_cluster_config()
        groups = config.node_group_configs if config is not None else ()
        return [
            ({k: float(v) for k, v in g.resources.items()}, int(g.max_count) if g.max_count >= 0 else 1)
            for g in groups
            if g.max_count != 0
        ]
    except Exception:  # an older or newer Ray without this API
        return []


def cluster_gpus() -> float:
    """GPUs of the connected cluster: those of its nodes, or, on an autoscaling cluster that has
    not started them yet, of the node types it may start."""
    now = float(ray.cluster_resources().get("GPU", 0.0))
    return now or sum(r.get("GPU", 0.0) * count for r, count in autoscaled_types())


def trial_slots(cpus: float, gpus: float) -> int:
    """Ray trials the connected cluster can run at once when each asks for ``cpus`` and ``gpus``:
    summed over its alive nodes, or over the nodes its autoscaler may bring up (each node type's
    slots times its most nodes), whichever is larger. So a cluster that starts with no workers is
    planned for the workers it will get (cluster.yaml: up to 8 one-GPU workers plan 8 GPU slots);
    nodes started by hand beside an autoscaler are counted only when they are more."""

    def per_node(r: dict[str, float]) -> int:
        n = math.floor(r.get("CPU", 0.0) / cpus) if cpus > 0 else 1 << 20
        if gpus > 0:
            n = min(n, math.floor(r.get("GPU", 0.0) / gpus))
        return max(0, n)

    nodes, _ = node_shapes()
    alive = sum(per_node(r) for r in nodes)
    scaled = sum(per_node(r) * count for r, count in autoscaled_types())
    return max(1, alive, scaled)


def check_resources(cpus: float, gpus: float | None) -> None:
    """Refuse a per-trial request that no node of the cluster (and no node type its autoscaler
    can start) can ever hold: Ray would wait for it forever."""
    nodes, types = node_shapes()
    gpu = gpus_for_trials(gpus, {"GPU": cluster_gpus()})
    shapes = nodes + types
    if any(r.get("CPU", 0.0) >= cpus and r.get("GPU", 0.0) >= gpu for r in shapes):
        return
    most_cpu = max((r.get("CPU", 0.0) for r in shapes), default=0.0)
    most_gpu = max((r.get("GPU", 0.0) for r in shapes), default=0.0)
    where = f"{len(nodes)} node(s)" + (f" and {len(types)} autoscaled node type(s)" if types else "")
    raise UsageError(
        f"no node can run a trial that asks for {cpus:g} CPU(s) and {gpu:g} GPU(s): the Ray cluster's "
        f"{where} offer at most {most_cpu:g} CPU(s) and {most_gpu:g} GPU(s) each; lower --cpus-per-trial "
        "or --gpus-per-trial"
    )


def prepare(store: Store, options: RunOptions, reads_data_root: bool = False) -> None:
    """Connect to Ray and check, before anything is written, that the cluster can reach the
    store (and the data root, where the trials read one) and run the trials' resource request."""
    start_ray(options.address)
    check_store_reachable_from_cluster(store)
    if reads_data_root:
        check_data_root_reachable_from_cluster(options.data_root)
    check_resources(options.cpus_per_trial, options.gpus_per_trial)


SHARED_FS_TYPES = {
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "lustre",
    "gpfs",
    "beegfs",
    "ceph",
    "glusterfs",
    "fuse.sshfs",
    "fuse.gcsfuse",
    "fuse.s3fs",
    "fuse.juicefs",
    "fuse.cephfs",
    "9p",
    "virtiofs",
}


def mount_type(path: str) -> str | None:
    """The file system type of the mount that holds ``path`` (Linux), if it can be told."""
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split()[1:3] for line in f]
    except OSError:
        return None
    path = os.path.realpath(path)
    best = max(
        (m for m in mounts if path == m[0] or path.startswith(m[0].rstrip("/") + "/")),
        key=lambda m: len(m[0]),
        default=None,
    )
    return best[1] if best else None


def machines() -> int:
    """Machines the connected cluster spans: its alive nodes' hosts, and at least two where an
    autoscaler may start more (their workers will need what the first ones need)."""
    hosts = {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
    return max(len(hosts), 2 if autoscaled_types() else 1)


def check_store_reachable_from_cluster(store: Store) -> None:
    """Refuse a store on a local disk when the cluster spans several machines."""
    if not store.local:
        return
    kind = mount_type(os.path.abspath(store.root))
    count = machines()
    if count > 1 and kind not in SHARED_FS_TYPES:
        raise UsageError(
            f"store {store.url!r} is on a local disk ({kind or 'unknown'} file system) but the Ray cluster "
            f"spans {count} machines; use an object store URL (s3://..., gs://...) or a shared NFS path"
        )


def check_data_root_reachable_from_cluster(root: str | None) -> None:
    """Refuse a data root on this machine's local disk when the cluster spans several machines:
    the workers elsewhere could not read it, and would fail on a missing file mid-sweep."""
    if root is None or "://" in root:
        return  # an fsspec URL (s3://, gs://, ...): every worker reads it the same way
    kind = mount_type(os.path.abspath(root))
    count = machines()
    if count > 1 and kind not in SHARED_FS_TYPES:
        raise UsageError(
            f"--data-root {root!r} is on this machine's local disk ({kind or 'unknown'} file system) but "
            f"the Ray cluster spans {count} machines, whose workers cannot read it; put the data sets on "
            "shared storage and pass its URL (e.g. --data-root s3://bucket/data) or a shared NFS path"
        )


def storage_for(store: Store) -> tuple[str, Any]:
    """Where Ray Tune keeps its experiment state: ``<store>/ray``, on the store's file system."""
    if store.local:
        return os.path.abspath(os.path.join(store.root, "ray")), None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return f"{store.root}/ray", PyFileSystem(FSSpecHandler(store.fs))


def _sidecar_path(store: Store, sweep: str) -> str:
    return f"{store.root}/ray/{sweep}.isosweep.json"


def _ray_max_failures(plan_bundles: Any, max_failures: int) -> int:
    # Each member may use up to `max_failures` retries of the whole Ray trial, and worker or node
    # losses also count there: give Ray enough for all of them.
    largest = max((len(b) for b in plan_bundles), default=1)
    return max_failures * largest + max_failures


DEFAULT_GPU_MEMORY = 16 << 30
"""Assumed memory of a GPU that could not be probed (the smallest of the usual datacenter GPUs)."""


def _gpu_memory() -> int:
    """Total memory of the GPU this Ray task holds (run remotely, on a GPU node)."""
    return int(torch.cuda.get_device_properties(0).total_memory)


def sized_to_gpus(plan: SweepPlan, options: RunOptions) -> SweepPlan:
    """The plan's fused bundles re-sized for Ray trials that hold GPUs (``--fuse auto``;
    ``isosweep.orchestrator.plan.gpu_bundle_size``): the GPU's memory is probed by a Ray task that
    holds the same share of a GPU as a trial will. Without GPUs the plan stays as it is."""
    if plan.fuse != "auto":
        return plan
    from isosweep.orchestrator.plan import GpuBudget

    start_ray(options.address)
    gpus = gpus_for_trials(options.gpus_per_trial, {"GPU": cluster_gpus()})
    if gpus <= 0 or cluster_gpus() <= 0:
        return plan
    try:
        memory = ray.get(ray.remote(num_gpus=gpus, num_cpus=0)(_gpu_memory).remote(), timeout=300)
    except Exception:  # no GPU node came up in time, or the probe failed: assume a small GPU
        memory = DEFAULT_GPU_MEMORY
    budget = GpuBudget(memory * min(1.0, gpus), options.max_concurrent or trial_slots(options.cpus_per_trial, gpus))
    sized = plan.for_gpu(budget)
    print(
        f"{options.sweep}: fused bundles sized to the GPUs: {len(sized.bundles)} bundle(s) of up to "
        f"{max(len(b) for b in sized.bundles)} trials ({budget.memory_bytes / 2**30:.1f} GiB per trial, "
        f"{budget.slots} at once)",
        flush=True,
    )
    return sized


def cluster_plan(
    configs: Sequence[TrialConfig], complete: set[str], fuse: int | str, force: bool, options: RunOptions
) -> SweepPlan:
    """Connect to the cluster that runs the sweep (a new local Ray, or ``options.address``) and
    bundle the trials for it: one slot per Ray trial the cluster can run at once
    (:func:`trial_slots`, or ``--max-concurrent``), each holding a GPU where the cluster has GPUs
    (:func:`gpus_for_trials`), and fused bundles sized to the GPU's memory (:func:`sized_to_gpus`)."""
    start_ray(options.address)
    gpus = gpus_for_trials(options.gpus_per_trial, {"GPU": cluster_gpus()})
    slots = options.max_concurrent or trial_slots(options.cpus_per_trial, gpus)
    print(
        f"{options.sweep}: planned for {slots} trial(s) at once on the Ray cluster, each with "
        f"{options.cpus_per_trial:g} CPU(s) and {gpus:g} GPU(s)",
        flush=True,
    )
    return sized_to_gpus(make_plan(configs, complete, fuse, slots, force), options)


def gpus_for_trials(requested: float | None, cluster: dict[str, float]) -> float:
    """GPUs each Ray trial asks for: ``requested`` as given; None (a study that wants a GPU, with
    no --gpus-per-trial) asks for one where the cluster has a GPU and for none where it has not,
    so the same command runs on a laptop and on a GPU cluster."""
    if requested is not None:
        return float(requested)
    return 1.0 if cluster.get("GPU", 0.0) >= 1.0 else 0.0


TRAINABLES = {"bundle": bundle_trainable, "search": search_trainable}
"""What a Ray trial of each kind of sweep runs (the sidecar file records the kind)."""


def _trainable(resources: dict[str, float], kind: str = "bundle") -> Any:
    return tune.with_resources(TRAINABLES[kind], resources)


def _fixed_params(store: Store, options: RunOptions) -> dict[str, Any]:
    """The part of every Ray trial's config that is the same for the whole sweep."""
    return {
        "store": os.path.abspath(store.url) if store.local else store.url,
        "sweep": options.sweep,
        "force_since": options.force_since,
        "provenance": run_provenance(),
        "threads": max(1, int(options.cpus_per_trial)),
        "data_root": options.data_root,
        "max_failures": options.max_failures,
        "compact": options.compact,
    }


def _fit(
    store: Store,
    options: RunOptions,
    kind: str,
    param_space: dict[str, Any],
    sidecar: dict[str, Any],
    progress: Progress,
    **tune_config: Any,
) -> Any:
    """Start Ray, write the sweep's sidecar file (what ``resume`` needs), run the Tuner."""
    start_ray(options.address)
    check_store_reachable_from_cluster(store)
    resources = {"cpu": options.cpus_per_trial, "gpu": gpus_for_trials(options.gpus_per_trial, {"GPU": cluster_gpus()})}
    if options.gpus_per_trial is None:
        print(
            f"{options.sweep}: {resources['gpu']:g} GPU per trial ({cluster_gpus():g} GPU(s) "
            "in the Ray cluster; set --gpus-per-trial to choose)",
            flush=True,
        )
    sidecar = {"sweep": options.sweep, "kind": kind, "resources": resources, **sidecar}
    store.fs.makedirs(f"{store.root}/ray", exist_ok=True)
    store.fs.pipe_file(_sidecar_path(store, options.sweep), json.dumps(sidecar).encode())
    storage_path, storage_fs = storage_for(store)
    tuner = tune.Tuner(
        _trainable(resources, kind),
        param_space=param_space,
        tune_config=tune.TuneConfig(max_concurrent_trials=options.max_concurrent, reuse_actors=True, **tune_config),
        run_config=tune.RunConfig(
            name=options.sweep,
            storage_path=storage_path,
            storage_filesystem=storage_fs,
            failure_config=tune.FailureConfig(max_failures=sidecar["ray_max_failures"]),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=0,
            callbacks=[progress],
            stop=_NoSpaceStop(),
        ),
    )
    grid = _tune_fit(tuner, store)
    record_lost_members(grid, store, options.sweep)
    return grid


_FULL_DISK: list[str] = []
"""Where the workers of the running sweep found a disk full (``_NoSpaceStop``). Module state, not
the stopper's: Tune pickles the stopper with the experiment, and a resumed sweep runs a copy."""


class _NoSpaceStop(tune.Stopper):
    """Stops the whole sweep at the first worker that found a disk full (its ``NO_SPACE`` report):
    every other bundle writes into the same store, and Ray's retries would only fill it again."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if NO_SPACE in result:
            _FULL_DISK.append(str(result[NO_SPACE]))
            return True
        return False

    def stop_all(self) -> bool:
        return bool(_FULL_DISK)


def _drop_checkpoints(grid: Any, store: Store) -> None:
    """Remove the Ray checkpoints of a sweep stopped by a full disk: the one being written is cut
    short (an empty or partial ``state.pt``), and none is of use, for Tune counts the stopped
    trials as ended (the same ``isosweep run`` trains them again, from the store). Freeing their
    space is also the first step of the fix."""
    for result in grid:
        try:
            folders = [p for p in store.list_folders(str(result.path)) if os.path.basename(p).startswith("checkpoint_")]
            for folder in folders:
                store.fs.rm(folder, recursive=True)
        except Exception:  # best effort: a checkpoint left here is still never trusted (_load_checkpoint)
            continue


def _tune_fit(tuner: Any, store: Store) -> Any:
    """Run the Tuner; NoSpaceError where a worker found a disk full, KeyboardInterrupt where the
    run was stopped (Ctrl-C, SIGTERM, SIGHUP)."""
    _STOP_SIGNAL.clear()
    _FULL_DISK.clear()
    _forward_worker_output(True)
    try:
        grid = tuner.fit()
    except Exception as exc:
        if no_space(exc):  # the driver's own writes (Tune's experiment state)
            raise NoSpaceError(no_space_path(exc) or store.url) from None
        raise
    if _FULL_DISK:
        _drop_checkpoints(grid, store)
        raise NoSpaceError(_FULL_DISK[0])
    if interrupted(grid):
        raise KeyboardInterrupt
    return grid


def run_sweep(plan: SweepPlan, store: Store, options: RunOptions) -> dict[str, int]:
    """Run the plan's bundles on Ray and return the final status counts of the planned trials."""
    try:
        if plan.bundles:
            param_space = {
                "bundle": tune.grid_search([json.dumps([c.to_dict() for c in b]) for b in plan.bundles]),
                **_fixed_params(store, options),
            }
            sidecar = {
                "keys": [c.key for c in plan.planned],
                "ray_max_failures": _ray_max_failures(plan.bundles, options.max_failures),
            }
            _fit(
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
    spec: Any, templates: list[TrialConfig], history: Any, store: Store, options: RunOptions
) -> dict[str, int]:
    """Run the points of a search (``isosweep.orchestrator.search``) that it still owes: ``num_samples``
    less those it evaluated before; Optuna's TPE proposes them, starting from ``history``.
    Returns the status counts of every trial of this search."""
    from ray.tune.search.optuna import OptunaSearch

    from isosweep.orchestrator.search import OBJECTIVE, build_optuna_study, search_space

    remaining = spec.num_samples - history.own_done
    if remaining > 0:
        study = build_optuna_study(spec, history)
        searcher = OptunaSearch(
            space=search_space(spec),
            metric=OBJECTIVE,
            mode="max",
            sampler=study.sampler,
            storage=study._storage,
            study_name=spec.sweep,
        )
        param_space = {"templates": json.dumps([t.to_dict() for t in templates]), **_fixed_params(store, options)}
        sidecar = {
            "search": {"dataset": spec.dataset, "budget": spec.budget},
            "ray_max_failures": _ray_max_failures([templates], options.max_failures),
        }
        try:
            _fit(
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


def search_counts(store: Store, sweep: str) -> dict[str, int]:
    """Status counts of the trials a search (its sweep name) recorded."""
    counts = {"ok": 0, "failed": 0, "diverged": 0, "missing": 0}
    for row in store.trial_rows(["sweep"]).values():
        if row["sweep"] == sweep:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def known_sweeps(store: Store) -> list[str]:
    # Listed, not globbed: the store's path may hold glob characters.
    return sorted(
        os.path.basename(p)[: -len(".isosweep.json")] for p in store.list_files(f"{store.root}/ray", ".isosweep.json")
    )


def resume_sweep(
    store: Store, sweep: str, address: str | None = None, compact: bool = True
) -> tuple[dict[str, int], int]:
    """Restore an interrupted sweep's Ray experiment and finish its unfinished and errored trials
    from their checkpoints, then (``compact``) merge its per-trial files. Returns the status
    counts and the number of planned trials."""
    storage_path, storage_fs = storage_for(store)
    path = f"{storage_path}/{sweep}"
    if sweep not in known_sweeps(store) or not store.fs.exists(f"{store.root}/ray/{sweep}"):
        known = known_sweeps(store)
        raise UsageError(
            f"no sweep named {sweep!r} in store {store.url!r}; "
            + (f"known sweeps: {', '.join(known)}" if known else "it has no sweeps yet (start one with `isosweep run`)")
        )
    with store.fs.open(_sidecar_path(store, sweep), "rb") as f:
        sidecar = json.loads(f.read())
    start_ray(address)
    check_store_reachable_from_cluster(store)
    # With an explicit file system, Ray takes paths inside it (no protocol prefix).
    restore_path = path
    if not tune.Tuner.can_restore(restore_path, storage_filesystem=storage_fs):
        raise UsageError(
            f"sweep {sweep!r} has no restorable Ray experiment state in {store.url!r}; "
            "run `isosweep run` again instead: it skips every completed trial"
        )
    kind = sidecar.get("kind", "bundle")
    tuner = tune.Tuner.restore(
        restore_path,
        trainable=_trainable(sidecar["resources"], kind),
        resume_unfinished=True,
        resume_errored=True,
        storage_filesystem=storage_fs,
    )
    try:
        grid = _tune_fit(tuner, store)
        record_lost_members(grid, store, sweep)
    finally:
        compact_after_sweep(store, sidecar.get("keys"), sweep, compact)
        clear_stale_claims(store, sidecar.get("keys"))
    if kind == "search":
        counts = search_counts(store, sweep)
        return counts, sum(counts.values())
    return status_counts(store, sidecar["keys"]), len(sidecar["keys"])


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
    from isosweep.orchestrator.compact import compact_sweep
    from isosweep.orchestrator.faults import compact_kill_point

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


def status_counts(store: Store, keys: list[str]) -> dict[str, int]:
    """How many of ``keys`` the store holds per status; ``damaged``: recorded ok, but a table of
    theirs is missing or unreadable (``StoredTrial.missing``), so the next run trains them again."""
    states = store.trial_states(keys)
    counts = {"ok": 0, "failed": 0, "diverged": 0, "damaged": 0, "missing": 0}
    for key in keys:
        state = states.get(key)
        status = "missing" if state is None else state.state
        counts[status] = counts.get(status, 0) + 1
    return counts


def record_lost_members(grid: Any, store: Store, sweep: str) -> None:
    """Members of bundles that Ray gave up on (after retries) get a ``failed`` row, so that nothing
    silently disappears and the next run retries them."""
    errored = [r for r in grid if r.error is not None]
    if not errored:
        return
    states = store.trial_states()
    for result in errored:
        if not result.config or not ({"bundle", "templates"} & set(result.config)):
            continue
        for cfg in members_of(result.config):
            if cfg.key not in states:
                store.write_result(failed_result(cfg, f"Ray trial failed: {result.error}"), sweep, run_provenance())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
