"""The local executor (``isosweep run --executor local``): a sweep's bundles trained in this process,
one after another, on this machine's CPU or its one GPU, with no Ray at all.

It runs the same plan through the same code as a Ray worker (``worker.train_members``): the
store's record of what is complete, claims, per-unit merges, failed and diverged rows, the
progress lines, the sweep-end compaction. What Ray Tune adds to that, it does itself:

- **Checkpoints.** Each bundle's last checkpoint is kept in ``<store>/ray/<sweep>/local/``, named
  by the bundle's trial keys, written whole or not at all. ``isosweep resume`` (and ``run`` again)
  restarts a bundle's unit from it; a bundle that ends removes its file, a sweep that ends the folder.
- **Retries.** A unit that raises is trained again from its last checkpoint, as Ray would restart
  it, up to the same limit (``sweep_params.bundle_failures``); then its members get ``failed`` rows.
- **Resume.** The sweep's record (``<store>/ray/<sweep>.json``) holds its bundles, so ``resume``
  needs nothing else. A sweep that Ray ran is resumed on Ray (its bundles are in Ray's state).

Ray stays the default and the only way across machines; this is for one machine where a Ray
cluster is overhead, not help (a container, a batch job, one GPU box).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from isosweep.errors import NoSpaceError, UsageError, first_line, no_space, no_space_path
from isosweep.orchestrator.finish import clear_stale_claims, compact_after_sweep, record_given_up
from isosweep.orchestrator.options import RunOptions
from isosweep.orchestrator.plan import GpuBudget, SweepPlan, make_plan
from isosweep.orchestrator.status import done_keys, status_counts, write_sidecar
from isosweep.orchestrator.sweep_params import bundle_failures, fixed_params
from isosweep.store import Store
from isosweep.trainers.config import TrialConfig

if TYPE_CHECKING:
    from isosweep.orchestrator.progress import Progress

EXECUTOR = "local"

# torch and the worker's code (which imports torch, as the progress display does through it) are
# imported where a sweep trains or plans for a GPU, not with this module: `isosweep status` and
# `query` import the sweeps' API, and torch would add seconds to each of them (and, under strace,
# reads of files outside the store: tests/hostile/test_hostile_inputs.py).


def local_device(gpus_per_trial: float | None) -> str:
    """Where the local executor trains: the GPU torch sees (``cuda``) unless ``--gpus-per-trial 0``
    asks for the CPU; the CPU where there is no GPU, unless a GPU was asked for."""
    if gpus_per_trial == 0:
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if gpus_per_trial is None:
        return "cpu"
    raise UsageError(
        f"--gpus-per-trial {gpus_per_trial:g} with --executor local needs a GPU that torch can use, and it "
        "sees none here; leave out --gpus-per-trial to train on the CPU"
    )


def local_plan(
    configs: list[TrialConfig], complete: set[str], fuse: int | str, force: bool, options: RunOptions
) -> SweepPlan:
    """Bundle the trials for one slot (this process): on the CPU as ``make_plan`` bundles for one
    slot; on the GPU, fused bundles as large as the GPU's memory holds (``plan.gpu_bundle_size``)."""
    device = local_device(options.gpus_per_trial)
    plan = make_plan(configs, complete, fuse, 1, force)
    where = "this machine's CPU"
    if device == "cuda":
        import torch

        memory = torch.cuda.get_device_properties(0).total_memory
        share = min(1.0, options.gpus_per_trial or 1.0)
        plan = plan.for_gpu(GpuBudget(memory * share, 1))
        where = f"the GPU {torch.cuda.get_device_name(0)} ({memory * share / 2**30:.1f} GiB)"
    print(
        f"{options.sweep}: planned for the local executor: one bundle at a time in this process, on {where}",
        flush=True,
    )
    return plan


@dataclass
class LocalTrial:
    """One bundle as the progress display sees a trial (``Progress.on_result``)."""

    trial_id: str
    config: dict[str, Any]
    members: list[TrialConfig]
    status: str = "PENDING"


@dataclass
class LocalCheckpoints:
    """The bundles' last checkpoints, in ``<store>/ray/<sweep>/local/<digest of the keys>.pt``."""

    store: Store
    sweep: str
    last: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per bundle: its last checkpoint, also kept in memory (a retry in this process reads it here)."""

    @property
    def folder(self) -> str:
        return f"{self.store.root}/ray/{self.sweep}/{EXECUTOR}"

    def path(self, members: list[TrialConfig]) -> str:
        digest = hashlib.sha256("\n".join(m.key for m in members).encode()).hexdigest()[:24]
        return f"{self.folder}/{digest}.pt"

    def load(self, path: str) -> dict[str, Any] | None:
        if path in self.last:
            return self.last[path]
        if not self.store.fs.exists(path):
            return None
        from isosweep.orchestrator.worker import read_checkpoint

        return read_checkpoint(lambda: self.store.fs.open(path, "rb"), self.store.uri(path))

    def save(self, path: str, payload: dict[str, Any]) -> None:
        self.last[path] = payload
        import torch

        buf = io.BytesIO()
        torch.save(payload, buf)
        self.store.write_bytes(path, buf.getvalue())

    def remove(self, path: str) -> None:
        self.last.pop(path, None)
        if self.store.fs.exists(path):
            self.store.fs.rm(path)

    def remove_all(self) -> None:
        if self.store.fs.exists(self.folder):
            self.store.fs.rm(self.folder, recursive=True)


def _train_bundle(
    trial: LocalTrial,
    trials: list[LocalTrial],
    checkpoints: LocalCheckpoints,
    progress: Progress,
    device: str,
    restarts: int,
) -> None:
    """Train one bundle as a Ray trial would be: from its checkpoint, restarted from the last one
    after a failure (``restarts`` times at most), its members given ``failed`` rows after that."""
    from isosweep.orchestrator.worker import train_members

    path = checkpoints.path(trial.members)

    def report(metrics: dict[str, Any], checkpoint: dict[str, Any] | None = None) -> None:
        if checkpoint is not None:
            checkpoints.save(path, checkpoint)
        progress.on_result(trials, trial, metrics)

    failures = 0
    while True:
        try:
            train_members(trial.config, trial.members, report, checkpoints.load(path), device)
            break
        except Exception as exc:
            if no_space(exc):
                raise NoSpaceError(no_space_path(exc) or checkpoints.store.url) from None
            failures += 1
            if failures <= restarts:
                continue  # as Ray restarts a trial: from the checkpoint the failed unit left
            print(
                f"isosweep: warning: bundle {trial.trial_id} failed {failures} times "
                f"({type(exc).__name__}: {first_line(exc)}); its unfinished trials are recorded as failed",
                flush=True,
            )
            record_given_up(
                checkpoints.store,
                trial.members,
                checkpoints.sweep,
                f"bundle failed: {first_line(exc)}",
                trial.config["provenance"],
            )
            break
    checkpoints.remove(path)


def train_bundles(bundles: list[list[TrialConfig]], store: Store, options: RunOptions, progress: Progress) -> None:
    """Train ``bundles`` one after another in this process; their checkpoints are kept until each
    ends, and the sweep's checkpoint folder is removed once every bundle has ended."""
    params = fixed_params(store, options)
    device = local_device(options.gpus_per_trial)
    restarts = bundle_failures(bundles, options.max_failures)
    trials = [
        LocalTrial(f"bundle-{i:05d}", {"bundle": json.dumps([c.to_dict() for c in b]), **params}, list(b))
        for i, b in enumerate(bundles)
    ]
    checkpoints = LocalCheckpoints(store, options.sweep)
    for trial in trials:
        trial.status = "RUNNING"
        _train_bundle(trial, trials, checkpoints, progress, device, restarts)
        trial.status = "TERMINATED"
    progress.on_end()
    checkpoints.remove_all()


RESUMED_OPTIONS = ("cpus_per_trial", "gpus_per_trial", "max_failures", "force_since", "data_root")
"""The run options that ``resume`` takes from the sweep's record, as Ray's trials keep them."""


def resumed_options(sweep: str, sidecar: dict[str, Any], compact: bool) -> RunOptions:
    """The run options of a sweep that the local executor ran, from its record."""
    recorded = sidecar.get("options", {})
    return RunOptions(
        sweep=sweep, compact=compact, executor=EXECUTOR, **{k: recorded[k] for k in RESUMED_OPTIONS if k in recorded}
    )


def sidecar_of(plan: SweepPlan, options: RunOptions) -> dict[str, Any]:
    """The sweep's record for ``resume``: its planned keys and, the local executor having no
    experiment state of its own, its bundles."""
    return {
        "sweep": options.sweep,
        "kind": "bundle",
        "executor": EXECUTOR,
        "keys": [c.key for c in plan.planned],
        "bundles": [[c.to_dict() for c in b] for b in plan.bundles],
        "options": {name: getattr(options, name) for name in RESUMED_OPTIONS},
    }


def run_local(plan: SweepPlan, store: Store, options: RunOptions) -> dict[str, int]:
    """Run the plan's bundles in this process and return the final status counts of the planned
    trials (as ``launch.run_sweep`` does on Ray)."""
    keys = [c.key for c in plan.planned]
    try:
        if plan.bundles:
            write_sidecar(store, options.sweep, sidecar_of(plan, options))
            store.fs.makedirs(f"{store.root}/ray/{options.sweep}", exist_ok=True)
            from isosweep.orchestrator.progress import Progress

            progress = Progress(total=len(plan.to_run), skipped=len(plan.complete))
            train_bundles([list(b) for b in plan.bundles], store, options, progress)
    finally:
        compact_after_sweep(store, keys, options.sweep, options.compact)
        clear_stale_claims(store, keys)
    return status_counts(store, keys)


def resume_local(store: Store, sweep: str, sidecar: dict[str, Any], compact: bool = True) -> tuple[dict[str, int], int]:
    """Finish a sweep that the local executor ran: its bundles from the sweep's record, each from
    its checkpoint where it has one; members already complete are skipped. Returns the status
    counts and the number of planned trials."""
    if "bundles" not in sidecar:
        raise UsageError(
            f"sweep {sweep!r} ran on Ray, whose state holds its unfinished bundles: resume it without "
            "--executor local, or run the same `isosweep run` command with --executor local (it skips "
            "every completed trial)"
        )
    options = resumed_options(sweep, sidecar, compact)
    keys = list(sidecar["keys"])
    bundles = [[TrialConfig.from_dict(d) for d in b] for b in sidecar["bundles"]]
    try:
        done = done_keys(store, keys, options.force_since)
        from isosweep.orchestrator.progress import Progress

        progress = Progress(total=len(keys) - len(done), skipped=len(done))
        train_bundles(bundles, store, options, progress)
    finally:
        compact_after_sweep(store, keys, sweep, compact)
        clear_stale_claims(store, keys)
    return status_counts(store, keys), len(keys)
