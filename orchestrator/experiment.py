"""The Ray Tune experiment of a sweep: where Tune keeps its state (in the store), the Tuner's
run and restore, a stop at the first full disk, and failed rows for members Ray gave up on."""

from __future__ import annotations

import os
from typing import Any

from pyarrow.fs import FSSpecHandler, PyFileSystem
from ray import tune

from isosweep.errors import NoSpaceError, UsageError, no_space, no_space_path
from isosweep.orchestrator.cluster import STOP_SIGNAL, cluster_gpus, forward_worker_output, interrupted, trial_gpus
from isosweep.orchestrator.finish import record_given_up
from isosweep.orchestrator.options import RunOptions
from isosweep.orchestrator.progress import Progress
from isosweep.orchestrator.status import write_sidecar
from isosweep.orchestrator.sweep_params import run_provenance
from isosweep.orchestrator.trainable import with_resources
from isosweep.orchestrator.worker import NO_SPACE, members_of
from isosweep.store import Store


def storage_for(store: Store) -> tuple[str, Any]:
    """Where Ray Tune keeps its experiment state: ``<store>/ray``, on the store's file system."""
    if store.local:
        return os.path.abspath(os.path.join(store.root, "ray")), None
    return f"{store.root}/ray", PyFileSystem(FSSpecHandler(store.fs))


def fit(
    store: Store,
    options: RunOptions,
    kind: str,
    param_space: dict[str, Any],
    sidecar: dict[str, Any],
    progress: Progress,
    **tune_config: Any,
) -> Any:
    """Write the sweep's sidecar file (what ``resume`` needs) and run the Tuner on the connected
    cluster (``cluster.connect``)."""
    resources = {"cpu": options.cpus_per_trial, "gpu": trial_gpus(options)}
    if options.gpus_per_trial is None:
        print(
            f"{options.sweep}: {resources['gpu']:g} GPU per trial ({cluster_gpus():g} GPU(s) "
            "in the Ray cluster; set --gpus-per-trial to choose)",
            flush=True,
        )
    sidecar = {"sweep": options.sweep, "kind": kind, "resources": resources, **sidecar}
    write_sidecar(store, options.sweep, sidecar)
    storage_path, storage_fs = storage_for(store)
    tuner = tune.Tuner(
        with_resources(resources, kind),
        param_space=param_space,
        tune_config=tune.TuneConfig(max_concurrent_trials=options.max_concurrent, reuse_actors=True, **tune_config),
        run_config=tune.RunConfig(
            name=options.sweep,
            storage_path=storage_path,
            storage_filesystem=storage_fs,
            failure_config=tune.FailureConfig(max_failures=sidecar["ray_max_failures"]),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=0,
            callbacks=[TuneProgress(progress)],
            stop=NoSpaceStop(),
        ),
    )
    grid = tune_fit(tuner, store)
    record_lost_members(grid, store, options.sweep)
    return grid


def restore(store: Store, sweep: str, sidecar: dict[str, Any]) -> Any:
    """The Tuner of the sweep's Ray experiment as it was left, to finish its unfinished and
    errored trials; UsageError where the store holds no restorable state of it."""
    storage_path, storage_fs = storage_for(store)
    # With an explicit file system, Ray takes paths inside it (no protocol prefix).
    path = f"{storage_path}/{sweep}"
    if not tune.Tuner.can_restore(path, storage_filesystem=storage_fs):
        raise UsageError(
            f"sweep {sweep!r} has no restorable Ray experiment state in {store.url!r}; "
            "run `isosweep run` again instead: it skips every completed trial"
        )
    return tune.Tuner.restore(
        path,
        trainable=with_resources(sidecar["resources"], sidecar.get("kind", "bundle")),
        resume_unfinished=True,
        resume_errored=True,
        storage_filesystem=storage_fs,
    )


class TuneProgress(tune.Callback):
    """The sweep's display (``progress.Progress``) as Ray Tune's callback."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self.progress.on_result(trials, trial, result)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.progress.on_end()


FULL_DISK: list[str] = []
"""Where the workers of the running sweep found a disk full (``NoSpaceStop``). Module state, not
the stopper's: Tune pickles the stopper with the experiment, and a resumed sweep runs a copy."""


class NoSpaceStop(tune.Stopper):
    """Stops the whole sweep at the first worker that found a disk full (its ``NO_SPACE`` report):
    every other bundle writes into the same store, and Ray's retries would only fill it again."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if NO_SPACE in result:
            FULL_DISK.append(str(result[NO_SPACE]))
            return True
        return False

    def stop_all(self) -> bool:
        return bool(FULL_DISK)


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


def tune_fit(tuner: Any, store: Store) -> Any:
    """Run the Tuner; NoSpaceError where a worker found a disk full, KeyboardInterrupt where the
    run was stopped (Ctrl-C, SIGTERM, SIGHUP)."""
    STOP_SIGNAL.clear()
    FULL_DISK.clear()
    forward_worker_output(True)
    try:
        grid = tuner.fit()
    except Exception as exc:
        if no_space(exc):  # the driver's own writes (Tune's experiment state)
            raise NoSpaceError(no_space_path(exc) or store.url) from None
        raise
    if FULL_DISK:
        _drop_checkpoints(grid, store)
        raise NoSpaceError(FULL_DISK[0])
    if interrupted(grid):
        raise KeyboardInterrupt
    return grid


def record_lost_members(grid: Any, store: Store, sweep: str) -> None:
    """Members of bundles that Ray gave up on (after retries) get a ``failed`` row
    (``finish.record_given_up``)."""
    for result in grid:
        if result.error is None or not result.config or not ({"bundle", "templates"} & set(result.config)):
            continue
        record_given_up(store, members_of(result.config), sweep, f"Ray trial failed: {result.error}", run_provenance())
