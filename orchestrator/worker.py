"""What a Ray trial runs, without Ray: train a bundle's members (or a search point's seeds) not
yet complete, and write each one's rows to the store. The Tune adapter
(``isosweep.orchestrator.trainable``) hands in how to report and the checkpoint to resume from.

Each Ray trial trains one bundle of trials (see ``isosweep.orchestrator.plan``) and writes every member's
rows to the store from the worker. The store, not Ray's experiment state, is the record of what
is done: members already complete are skipped, so re-running or resuming never repeats work.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import IO, Any, Protocol

import torch

from isosweep.errors import first_line, no_space
from isosweep.orchestrator.claims import Claims
from isosweep.orchestrator.compact import merge_written
from isosweep.orchestrator.faults import Faults, compact_kill_point
from isosweep.orchestrator.search import OBJECTIVE, at_point, point_objective
from isosweep.orchestrator.status import done_keys
from isosweep.store import Store
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.kinds import fusable
from isosweep.trainers.records import TrialResult, TrialStatus
from isosweep.trainers.run import failed_result, run_bundle, run_trial


class Report(Protocol):
    """How a worker reports to the driver: ``metrics``, and with ``checkpoint`` the state to
    resume from (``{"keys", "state", "attempts"}``), saved before the report is sent."""

    def __call__(self, metrics: dict[str, Any], checkpoint: dict[str, Any] | None = None) -> None: ...


NO_SPACE = "no_space"
"""The report of a worker whose write found a disk full: the file (or the store), for the driver,
which then stops the sweep (``experiment.NoSpaceStop``) instead of letting Ray retry into the same full disk."""

FINISHED_REPORT_S = 1.0
"""How often a worker reports the members it has written (a fused unit writes hundreds a second;
each Ray Tune report is a round trip to the driver, carrying the Ray trial's whole config)."""


CHECKPOINT_FILE = "state.pt"
"""The file of a bundle's checkpoint (``{"keys", "state", "attempts"}``, saved by ``torch.save``)."""


def read_checkpoint(open_file: Callable[[], AbstractContextManager[IO[bytes]]], shown: str) -> dict[str, Any] | None:
    """The payload of a bundle's checkpoint (opened by ``open_file``; ``shown`` names it); None
    (train from the start) where the file is missing, empty or cut short, as a write into a full
    disk leaves it: a damaged checkpoint costs the progress it held, never the run."""
    try:
        with open_file() as f:
            # Checkpoints hold CPU tensors (``isosweep.trainers.device.to_cpu``): any node or device resumes them.
            loaded: dict[str, Any] = torch.load(f, weights_only=False, map_location="cpu")
            return loaded
    except Exception as exc:
        if no_space(exc):
            raise
        print(
            f"isosweep: warning: unreadable checkpoint {shown} ({type(exc).__name__}: {first_line(exc)}); "
            "its bundle trains from the start",
            file=sys.stderr,
        )
        return None


def members_of(config: dict[str, Any]) -> list[TrialConfig]:
    """The trials one Ray trial trains: a bundle's members, or a search point's seeds."""
    if "bundle" in config:
        return [TrialConfig.from_dict(d) for d in json.loads(config["bundle"])]
    templates = [TrialConfig.from_dict(d) for d in json.loads(config["templates"])]
    return at_point(templates, float(config["lam1"]), float(config["lam2"]))


def _units(members: list[TrialConfig]) -> list[list[TrialConfig]]:
    """What trains together: all pending members as one vectorised unit where they can fuse,
    else one member at a time."""
    if len(members) > 1 and fusable(members):
        return [members]
    return [[m] for m in members]


def _run_unit(
    unit: list[TrialConfig], report: Any, state: dict[str, Any] | None, data_root: str | None, where: str
) -> list[TrialResult]:
    if len(unit) == 1:
        return [run_trial(unit[0], report, state, data_root, where)]
    return run_bundle(unit, report, state, data_root, where)


def train_point(config: dict[str, Any], report: Report, restored: dict[str, Any] | None, device: str) -> None:
    """Evaluate one point (lambda1, lambda2) of a search: train its seeds' trials as a bundle,
    then report their mean validation F1 (``isosweep.orchestrator.search``) as the searcher's objective.

    Every report carries the objective (Optuna's searcher reads it from each result): the mean
    over the seeds finished so far, and over all of them in the last report.
    """
    members = members_of(config)
    values: dict[str, float | None] = {}

    def objective() -> dict[str, float]:
        return {OBJECTIVE: point_objective(values.values())}

    def finished(result: TrialResult) -> None:
        values[result.key] = result.scalars.get("val_f1") if result.status == TrialStatus.OK else None

    train_members(config, members, report, restored, device, objective, finished)
    # Seeds that were complete before this point started were skipped: read them from the store.
    rows = Store(config["store"], warn=False).trial_rows(["val_f1"], [m.key for m in members])
    for m in members:
        row = rows.get(m.key)
        values[m.key] = row["val_f1"] if row is not None and row["status"] == TrialStatus.OK.value else None
    report({**objective(), "point_done": 1, "member": 0, "trial_key": members[0].key})


def train_members(
    config: dict[str, Any],
    members: list[TrialConfig],
    send: Report,
    restored: dict[str, Any] | None,
    device: str,
    extra: Callable[[], dict[str, Any]] = dict,
    finished: Callable[[TrialResult], None] = lambda result: None,
) -> None:
    """Train the members not yet complete and write each one's rows to the store; ``extra``
    adds metrics to every report, ``finished`` sees every result once it is written.

    A unit that raises is retried by Ray from its last checkpoint, up to ``max_failures`` times (the
    attempt count travels in the checkpoint); after that its members are recorded as ``failed``
    and the bundle goes on."""
    torch.set_num_threads(int(config.get("threads", 1)))
    faults = Faults.from_env()
    store = Store(config["store"], warn=False)  # the driver names unreadable files; its workers do not
    index = {cfg.key: i for i, cfg in enumerate(members)}

    def complete(keys: list[str]) -> set[str]:
        """Which of ``keys`` the store holds complete now (listed afresh: ``Store.list_files``)."""
        return done_keys(store, keys, config.get("force_since"))

    done = complete([m.key for m in members])
    pending = [cfg for cfg in members if cfg.key not in done]
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
                send(
                    {**metrics, "member": index[keys[0]], "trial_key": keys[0], "members": len(keys), **extra()},
                    {"keys": keys, "state": last["state"], "attempts": attempt},
                )
                for key in keys:
                    faults.maybe_raise(key, int(metrics["progress"]), attempt)

            try:
                results = _run_unit(unit, report, last["state"], config.get("data_root"), device)
            except Exception as exc:
                if no_space(exc):
                    raise  # a retry would write into the same full disk: the sweep stops (``trainable.ends_on_full_disk``)
                if attempt < int(config.get("max_failures", 0)):
                    # Hand the retry to Ray: it restarts this bundle from the checkpoint saved here,
                    # which holds the unit's last progress and its attempt count.
                    send(
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
                    _report_finished(send, written, extra)
                    last_report = time.monotonic()
            merged = _merge_unit(store, files, claims) if merge else {}
            _report_finished(send, written, extra, merged)
    finally:
        claims.close()


def _report_finished(
    send: Report,
    written: list[list[Any]],
    extra: Callable[[], dict[str, Any]],
    merged: dict[str, float] | None = None,
) -> None:
    """One report of the members written since the last: ``finished`` lists (member index, key,
    status, wall seconds) of each; ``merged``, what the unit's merge did. Empties ``written``."""
    if not written and not merged:
        return
    last = written[-1] if written else [0, ""]
    send({"member": last[0], "trial_key": last[1], "finished": list(written), **(merged or {}), **extra()})
    written.clear()


def _merge_unit(store: Store, files: list[tuple[str, str, Any]], claims: Claims) -> dict[str, float]:
    """Merge the unit's per-trial files into compacted ones, then release the unit's claims.
    A failure loses nothing (the rows stay in their own files, for the sweep-end compaction):
    it is logged, not raised. Returns the merge's counts and seconds, for the driver's summary."""
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
            raise  # the sweep stops (``trainable.ends_on_full_disk``): later writes would fail alike
        print(
            f"isosweep: warning: merging a unit's files failed ({type(exc).__name__}: {first_line(exc)}); "
            "the sweep's end merges them",
            file=sys.stderr,
        )
        return {}
    finally:
        for key in {os.path.basename(path)[: -len(".parquet")] for table, path, _ in files if table == "trials"}:
            claims.release(key)
