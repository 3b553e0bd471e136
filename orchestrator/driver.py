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
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

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
from orchestrator.faults import Faults, worker_env  # noqa: E402
from orchestrator.plan import SweepPlan  # noqa: E402
from orchestrator.store import Store  # noqa: E402
from trainers.config import TrialConfig  # noqa: E402
from trainers.records import TrialResult, TrialStatus  # noqa: E402
from trainers.run import failed_result, fusable, run_bundle, run_trial  # noqa: E402

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


def _save_and_report(metrics: dict[str, Any], payload: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as d:
        torch.save(payload, os.path.join(d, CHECKPOINT_FILE))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


def _units(members: list[TrialConfig]) -> list[list[TrialConfig]]:
    """What trains together: all pending members as one vectorised unit where they can fuse,
    else one member at a time."""
    if len(members) > 1 and fusable(members):
        return [members]
    return [[m] for m in members]


def _run_unit(unit: list[TrialConfig], report: Any, state: Optional[dict[str, Any]], data_root: Optional[str]) -> list[TrialResult]:
    if len(unit) == 1:
        return [run_trial(unit[0], report, state, data_root)]
    return run_bundle(unit, report, state, data_root)


def bundle_trainable(config: dict[str, Any]) -> None:
    """Train one bundle: its members not yet complete, fused into one vectorised model where they
    can be, resuming from the bundle's checkpoint.

    A unit that raises is retried by Ray from its last checkpoint, up to ``max_failures`` times (the
    attempt count travels in the checkpoint); after that its members are recorded as ``failed``
    and the bundle goes on.
    """
    torch.set_num_threads(int(config.get("threads", 1)))
    faults = Faults.from_env()
    store = Store(config["store"])
    members = [TrialConfig.from_dict(d) for d in json.loads(config["bundle"])]
    index = {cfg.key: i for i, cfg in enumerate(members)}
    restored: Optional[dict[str, Any]] = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            restored = torch.load(os.path.join(d, CHECKPOINT_FILE), weights_only=False)
    states = store.trial_states([m.key for m in members])
    pending = [cfg for cfg in members if not _is_done(states.get(cfg.key), config.get("force_since"))]
    for unit in _units(pending):
        keys = [c.key for c in unit]
        resuming = restored is not None and restored["keys"] == keys
        attempt = int(restored["attempts"]) if resuming and restored else 0
        last: dict[str, Any] = {"state": restored["state"] if resuming and restored else None}

        def report(metrics: dict[str, float], make_checkpoint: Any, keys: list[str] = keys,
                   attempt: int = attempt, last: dict[str, Any] = last) -> None:
            last["state"] = make_checkpoint()
            _save_and_report({**metrics, "member": index[keys[0]], "trial_key": keys[0], "members": len(keys)},
                             {"keys": keys, "state": last["state"], "attempts": attempt})
            for key in keys:
                faults.maybe_raise(key, int(metrics["epoch"]), attempt)

        try:
            results = _run_unit(unit, report, last["state"], config.get("data_root"))
        except Exception as exc:
            if attempt < int(config.get("max_failures", 0)):
                # Hand the retry to Ray: it restarts this bundle from the checkpoint saved here,
                # which holds the unit's last progress and its attempt count.
                _save_and_report({"member": index[keys[0]], "trial_key": keys[0], "retrying": 1},
                                 {"keys": keys, "state": last["state"], "attempts": attempt + 1})
                raise
            results = [failed_result(cfg, exc) for cfg in unit]
        for result in results:
            if faults.kill_in_write is not None:
                store.before_commit = faults.write_hook(len(store.completed_keys()))
            store.write_result(result, config["sweep"], config["provenance"])
            tune.report({"member": index[result.key], "trial_key": result.key,
                         "member_status": result.status.value, "member_wall_s": result.wall_s})


# -- driver side ------------------------------------------------------------------------------

@dataclass
class Progress(tune.Callback):
    """One line per finished trial, readable in a log file: counts, the trial and an ETA."""

    total: int
    skipped: int
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "failed": 0, "diverged": 0})
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        super().__init__()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        member = json.loads(trial.config["bundle"])[result["member"]]
        what = " ".join(f"{k}={member[k]}" for k in ("dataset", "loss", "lam", "lam1", "lam2", "seed") if member.get(k) is not None)
        if result.get("retrying"):
            print(f"retry    {result['trial_key']} {what}: failed, continuing from its last checkpoint", flush=True)
            return
        status = result.get("member_status")
        if status is None:
            return
        self.counts[status] = self.counts.get(status, 0) + 1
        finished = sum(self.counts.values())
        elapsed = time.monotonic() - self.started
        eta = elapsed / finished * max(0, self.total - finished)
        running = sum(1 for t in trials if t.status == "RUNNING")
        print(f"[{finished}/{self.total}] {status:<8} {result['trial_key']} {what} ({result['member_wall_s']:.2f}s) "
              f"| ok {self.counts['ok']} failed {self.counts['failed']} diverged {self.counts['diverged']} "
              f"skipped {self.skipped} running {running} | eta {eta:.0f}s", flush=True)


@dataclass(frozen=True)
class RunOptions:
    """How to run a sweep (none of it changes a trial's result)."""

    sweep: str
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: Optional[int] = None
    max_failures: int = 2
    """Retries of a failing trial from its last checkpoint before it is recorded as failed."""
    address: Optional[str] = None
    force_since: Optional[str] = None
    data_root: Optional[str] = None
    """Folder or fsspec URL of the real data sets (not part of any trial's identity)."""


def start_ray(address: Optional[str]) -> None:
    """Connect to the cluster at ``address``, or start a local Ray sized to this machine."""
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "include_dashboard": False,
                              "logging_config": ray.LoggingConfig(log_level="WARNING")}
    if worker_env():
        kwargs["runtime_env"] = {"env_vars": worker_env()}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            # "local" always starts a new instance, never joins another Ray found on this machine.
            ray.init(address="local", num_cpus=os.cpu_count(), **kwargs)
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError, timeouts: all mean "not there"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot connect to Ray at {address or 'a new local instance'}: {first}; "
                         "check the address (ray status on the head node prints it)") from None
    # Per-trial result files are switched off (the store has the results), so the result grid's
    # attempt to read them would warn once per bundle.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


SHARED_FS_TYPES = {"nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "beegfs", "ceph", "glusterfs", "fuse.sshfs",
                   "fuse.gcsfuse", "fuse.s3fs", "fuse.juicefs", "fuse.cephfs", "9p", "virtiofs"}


def mount_type(path: str) -> Optional[str]:
    """The file system type of the mount that holds ``path`` (Linux), if it can be told."""
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split()[1:3] for line in f]
    except OSError:
        return None
    path = os.path.realpath(path)
    best = max((m for m in mounts if path == m[0] or path.startswith(m[0].rstrip("/") + "/")),
               key=lambda m: len(m[0]), default=None)
    return best[1] if best else None


def check_store_reachable_from_cluster(store: Store) -> None:
    """Refuse a store on a local disk when the cluster spans several machines."""
    if not store.local:
        return
    hosts = {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
    kind = mount_type(os.path.abspath(store.root))
    if len(hosts) > 1 and kind not in SHARED_FS_TYPES:
        raise UsageError(f"store {store.url!r} is on a local disk ({kind or 'unknown'} file system) but the Ray cluster "
                         f"spans {len(hosts)} machines; use an object store URL (s3://..., gs://...) or a shared NFS path")


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


def _trainable(resources: dict[str, float]) -> Any:
    return tune.with_resources(bundle_trainable, resources)


def run_sweep(plan: SweepPlan, store: Store, options: RunOptions) -> dict[str, int]:
    """Run the plan's bundles on Ray and return the final status counts of the planned trials."""
    if plan.bundles:
        start_ray(options.address)
        check_store_reachable_from_cluster(store)
        store_url = os.path.abspath(store.url) if store.local else store.url
        resources = {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial}
        param_space = {
            "bundle": tune.grid_search([json.dumps([c.to_dict() for c in b]) for b in plan.bundles]),
            "store": store_url,
            "sweep": options.sweep,
            "force_since": options.force_since,
            "provenance": run_provenance(),
            "threads": max(1, int(options.cpus_per_trial)),
            "data_root": options.data_root,
            "max_failures": options.max_failures,
        }
        storage_path, storage_fs = storage_for(store)
        sidecar = {"sweep": options.sweep, "keys": [c.key for c in plan.planned], "resources": resources,
                   "ray_max_failures": _ray_max_failures(plan.bundles, options.max_failures)}
        store.fs.makedirs(f"{store.root}/ray", exist_ok=True)
        store.fs.pipe_file(_sidecar_path(store, options.sweep), json.dumps(sidecar).encode())
        progress = Progress(total=len(plan.to_run), skipped=len(plan.complete))
        tuner = tune.Tuner(
            _trainable(resources),
            param_space=param_space,
            tune_config=tune.TuneConfig(max_concurrent_trials=options.max_concurrent, reuse_actors=True),
            run_config=tune.RunConfig(
                name=options.sweep, storage_path=storage_path, storage_filesystem=storage_fs,
                failure_config=tune.FailureConfig(max_failures=sidecar["ray_max_failures"]),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                verbose=0, callbacks=[progress],
            ),
        )
        grid = tuner.fit()
        record_lost_members(grid, store, options.sweep)
    return status_counts(store, [c.key for c in plan.planned])


def known_sweeps(store: Store) -> list[str]:
    return sorted(os.path.basename(p)[: -len(".isosweep.json")] for p in store.fs.glob(f"{store.root}/ray/*.isosweep.json"))


def resume_sweep(store: Store, sweep: str, address: Optional[str] = None) -> tuple[dict[str, int], int]:
    """Restore an interrupted sweep's Ray experiment and finish its unfinished and errored trials
    from their checkpoints. Returns the status counts and the number of planned trials."""
    storage_path, storage_fs = storage_for(store)
    path = f"{storage_path}/{sweep}"
    if sweep not in known_sweeps(store) or not store.fs.exists(f"{store.root}/ray/{sweep}"):
        known = known_sweeps(store)
        raise UsageError(f"no sweep named {sweep!r} in store {store.url!r}; "
                         + (f"known sweeps: {', '.join(known)}" if known else "it has no sweeps yet (start one with `isosweep run`)"))
    with store.fs.open(_sidecar_path(store, sweep), "rb") as f:
        sidecar = json.loads(f.read())
    start_ray(address)
    check_store_reachable_from_cluster(store)
    # With an explicit file system, Ray takes paths inside it (no protocol prefix).
    restore_path = path
    if not tune.Tuner.can_restore(restore_path, storage_filesystem=storage_fs):
        raise UsageError(f"sweep {sweep!r} has no restorable Ray experiment state in {store.url!r}; "
                         "run `isosweep run` again instead: it skips every completed trial")
    tuner = tune.Tuner.restore(restore_path, trainable=_trainable(sidecar["resources"]), resume_unfinished=True,
                               resume_errored=True, storage_filesystem=storage_fs)
    grid = tuner.fit()
    record_lost_members(grid, store, sweep)
    return status_counts(store, sidecar["keys"]), len(sidecar["keys"])


def status_counts(store: Store, keys: list[str]) -> dict[str, int]:
    states = store.trial_states(keys)
    counts = {"ok": 0, "failed": 0, "diverged": 0, "missing": 0}
    for key in keys:
        status = states[key].status if key in states else "missing"
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
        if not result.config or "bundle" not in result.config:
            continue
        for member in json.loads(result.config["bundle"]):
            cfg = TrialConfig.from_dict(member)
            if cfg.key not in states:
                store.write_result(failed_result(cfg, f"Ray trial failed: {result.error}"), sweep, run_provenance())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
