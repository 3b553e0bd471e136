"""The Ray Tune driver: the only module of the project that imports Ray.

Each Ray trial trains one bundle of trials (see ``orchestrator.plan``) and writes every member's
rows to the store from the worker. The store, not Ray's experiment state, is the record of what
is done: members already complete are skipped, so re-running or resuming never repeats work.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, TextIO

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

from orchestrator.errors import UsageError  # noqa: E402
from orchestrator.plan import SweepPlan  # noqa: E402
from orchestrator.store import Store  # noqa: E402
from trainers.config import TrialConfig  # noqa: E402
from trainers.records import TrialStatus  # noqa: E402
from trainers.run import failed_result, run_trial  # noqa: E402

CHECKPOINT_FILE = "state.pt"


def git_revision() -> Optional[str]:
    """The git revision of the code being run, where it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def run_provenance() -> dict[str, Any]:
    return {"git_rev": git_revision(), "ray_version": ray.__version__}


# -- worker side ------------------------------------------------------------------------------

def _is_done(state: Any, force_since: Optional[str]) -> bool:
    if state is None or state.status != TrialStatus.OK.value:
        return False
    if force_since is None:
        return True
    return state.finished_at is not None and state.finished_at >= datetime.fromisoformat(force_since)


def bundle_trainable(config: dict[str, Any]) -> None:
    """Train one bundle: every member not yet complete, resuming the current one from its checkpoint."""
    torch.set_num_threads(int(config.get("threads", 1)))
    store = Store(config["store"])
    members = [TrialConfig.from_dict(d) for d in json.loads(config["bundle"])]
    restored: Optional[dict[str, Any]] = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            restored = torch.load(os.path.join(d, CHECKPOINT_FILE), weights_only=False)
    states = store.trial_states([m.key for m in members])
    for index, cfg in enumerate(members):
        if _is_done(states.get(cfg.key), config.get("force_since")):
            continue
        member_state = restored["state"] if restored is not None and restored["key"] == cfg.key else None

        def report(metrics: dict[str, float], make_checkpoint: Any, key: str = cfg.key, i: int = index) -> None:
            with tempfile.TemporaryDirectory() as d:
                torch.save({"key": key, "state": make_checkpoint()}, os.path.join(d, CHECKPOINT_FILE))
                tune.report({**metrics, "member": i, "trial_key": key}, checkpoint=tune.Checkpoint.from_directory(d))

        try:
            result = run_trial(cfg, report, member_state, config.get("data_root"))
        except Exception as exc:  # recorded, never silently dropped; a later run retries it
            result = failed_result(cfg, exc)
        store.write_result(result, config["sweep"], config["provenance"])
        tune.report({"member": index, "trial_key": cfg.key, "member_status": result.status.value,
                     "member_wall_s": result.wall_s})


# -- driver side ------------------------------------------------------------------------------

@dataclass
class Progress(tune.Callback):
    """One line per finished trial, readable in a log file: counts, the trial and an ETA."""

    total: int
    skipped: int
    out: TextIO = sys.stdout
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "failed": 0, "diverged": 0})
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        super().__init__()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        status = result.get("member_status")
        if status is None:
            return
        self.counts[status] = self.counts.get(status, 0) + 1
        finished = sum(self.counts.values())
        elapsed = time.monotonic() - self.started
        eta = elapsed / finished * (self.total - finished)
        running = sum(1 for t in trials if t.status == "RUNNING")
        member = json.loads(trial.config["bundle"])[result["member"]]
        what = " ".join(f"{k}={member[k]}" for k in ("dataset", "loss", "lam", "lam1", "lam2", "seed") if member.get(k) is not None)
        print(f"[{finished}/{self.total}] {status:<8} {result['trial_key']} {what} ({result['member_wall_s']:.2f}s) "
              f"| ok {self.counts['ok']} failed {self.counts['failed']} diverged {self.counts['diverged']} "
              f"skipped {self.skipped} running {running} | eta {eta:.0f}s", file=self.out, flush=True)


@dataclass(frozen=True)
class RunOptions:
    """How to run a sweep (none of it changes a trial's result)."""

    sweep: str
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: Optional[int] = None
    max_failures: int = 2
    address: Optional[str] = None
    force_since: Optional[str] = None
    data_root: Optional[str] = None
    """Folder or fsspec URL of the real data sets (not part of any trial's identity)."""


def start_ray(address: Optional[str]) -> None:
    """Connect to the cluster at ``address``, or start a local Ray sized to this machine."""
    if ray.is_initialized():
        return
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING, include_dashboard=False,
                     logging_config=ray.LoggingConfig(log_level="WARNING"))
        else:
            ray.init(num_cpus=os.cpu_count(), logging_level=logging.WARNING, include_dashboard=False,
                     logging_config=ray.LoggingConfig(log_level="WARNING"))
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot connect to Ray at {address or 'a new local instance'}: {exc}") from None
    # Per-trial result files are switched off (the store has the results), so the result grid's
    # attempt to read them would warn once per bundle.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


def storage_for(store: Store) -> tuple[str, Any]:
    """Where Ray Tune keeps its experiment state: ``<store>/ray``, on the store's file system."""
    if store.local:
        return os.path.abspath(os.path.join(store.root, "ray")), None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return f"{store.root}/ray", PyFileSystem(FSSpecHandler(store.fs))


def run_sweep(plan: SweepPlan, store: Store, options: RunOptions) -> dict[str, int]:
    """Run the plan's bundles on Ray and return the final status counts of the planned trials."""
    if plan.bundles:
        start_ray(options.address)
        store_url = os.path.abspath(store.url) if store.local else store.url
        param_space = {
            "bundle": tune.grid_search([json.dumps([c.to_dict() for c in b]) for b in plan.bundles]),
            "store": store_url,
            "sweep": options.sweep,
            "force_since": options.force_since,
            "provenance": run_provenance(),
            "threads": max(1, int(options.cpus_per_trial)),
            "data_root": options.data_root,
        }
        storage_path, storage_fs = storage_for(store)
        progress = Progress(total=len(plan.to_run), skipped=len(plan.complete))
        resources = {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial}
        tuner = tune.Tuner(
            tune.with_resources(bundle_trainable, resources),
            param_space=param_space,
            tune_config=tune.TuneConfig(max_concurrent_trials=options.max_concurrent, reuse_actors=True),
            run_config=tune.RunConfig(
                name=options.sweep, storage_path=storage_path, storage_filesystem=storage_fs,
                failure_config=tune.FailureConfig(max_failures=options.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                verbose=0, callbacks=[progress],
            ),
        )
        grid = tuner.fit()
        record_lost_members(grid, plan, store, options)
    states = store.trial_states([c.key for c in plan.planned])
    counts = {"ok": 0, "failed": 0, "diverged": 0, "missing": 0}
    for cfg in plan.planned:
        s = states.get(cfg.key)
        counts[s.status if s else "missing"] = counts.get(s.status if s else "missing", 0) + 1
    return counts


def record_lost_members(grid: Any, plan: SweepPlan, store: Store, options: RunOptions) -> None:
    """Members of bundles that Ray gave up on (after retries) get a ``failed`` row, so that nothing
    silently disappears and the next run retries them."""
    states = store.trial_states([c.key for c in plan.to_run])
    for result in grid:
        if result.error is None:
            continue
        for member in json.loads(result.config["bundle"]):
            cfg = TrialConfig.from_dict(member)
            if cfg.key not in states:
                store.write_result(failed_result(cfg, f"Ray trial failed: {result.error}"), options.sweep, run_provenance())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
