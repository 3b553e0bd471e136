"""The Ray Tune trainables: thin adapters that give the worker's body
(``isosweep.orchestrator.worker``) Tune's reports, checkpoints and the trial's device."""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

import ray
import torch
from ray import tune

from isosweep.errors import no_space, no_space_path
from isosweep.orchestrator.search import OBJECTIVE
from isosweep.orchestrator.worker import (
    CHECKPOINT_FILE,
    NO_SPACE,
    members_of,
    read_checkpoint,
    train_members,
    train_point,
)


def _report(metrics: dict[str, Any], checkpoint: dict[str, Any] | None = None) -> None:
    """Tune's report (``worker.Report``), with ``checkpoint`` saved as the trial's Ray checkpoint."""
    if checkpoint is None:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory() as d:
        torch.save(checkpoint, os.path.join(d, CHECKPOINT_FILE))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


@contextlib.contextmanager
def _checkpoint_file(checkpoint: Any) -> Iterator[IO[bytes]]:
    """The state file of a Ray checkpoint, fetched to a local folder where it is remote."""
    with checkpoint.as_directory() as d, open(os.path.join(d, CHECKPOINT_FILE), "rb") as f:
        yield f


def _load_checkpoint(checkpoint: Any) -> dict[str, Any] | None:
    """The payload of a bundle's Ray checkpoint (``worker.read_checkpoint``)."""
    return read_checkpoint(lambda: _checkpoint_file(checkpoint), checkpoint.path)


def _restored() -> dict[str, Any] | None:
    checkpoint = tune.get_checkpoint()
    return _load_checkpoint(checkpoint) if checkpoint is not None else None


def trial_device() -> str:
    """The device of this Ray trial: ``cuda`` when Ray gave it a GPU (Ray then sets
    CUDA_VISIBLE_DEVICES to that GPU, which torch sees as ``cuda:0``), else ``cpu``."""
    return "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"


def ends_on_full_disk(train: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
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
                # Tune requires the searcher's metric in every result; the stopped point's value
                # is never used again (the next run rebuilds the search's history from the store).
                objective[OBJECTIVE] = 0.0
            tune.report({NO_SPACE: no_space_path(exc) or config["store"], "member": 0, "trial_key": "", **objective})

    return trainable


@ends_on_full_disk
def bundle_trainable(config: dict[str, Any]) -> None:
    """Train one bundle: its members not yet complete, fused into one vectorised model where they
    can be, resuming from the bundle's checkpoint (``worker.train_members``)."""
    train_members(config, members_of(config), _report, _restored(), trial_device())


@ends_on_full_disk
def search_trainable(config: dict[str, Any]) -> None:
    """Evaluate one point (lambda1, lambda2) of a search (``worker.train_point``)."""
    train_point(config, _report, _restored(), trial_device())


TRAINABLES = {"bundle": bundle_trainable, "search": search_trainable}
"""What a Ray trial of each kind of sweep runs (the sidecar file records the kind)."""


def with_resources(resources: dict[str, float], kind: str = "bundle") -> Any:
    return tune.with_resources(TRAINABLES[kind], resources)
