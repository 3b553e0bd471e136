"""What every trainer shares: the MLP bundles of ``isosweep.trainers.fused``, the anomaly trial's
snapshot loop (``isosweep.trainers.anomaly``) and the image trials' iterations
(``isosweep.trainers.image``).

- the progress callback (``ReportFn``) and the checkpoint it may ask for (``Checkpoint``);
- the seed of a trial's own training draws (``loop_seed``);
- the learning-rate schedule (``step_learning_rate``, docs/method.md 5.1);
- when progress is reported (``report_epochs``) and the terms each report and curve row carry;
- what training hands on (``TrainOutcome``), or raises when the loss is no longer finite.

It imports no torch, so that what needs only these names (the trial-kind registry, planning)
stays light.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from isosweep.trainers.config import TrialConfig

if TYPE_CHECKING:
    from isosweep.trainers.models import VAEModule

LOOP_STREAM = 3
CURVE_TERMS = ("loss", "recon", "kl")
"""Terms of the objective (``isosweep.trainers.objective``) in every curve row and progress report."""

Checkpoint = dict[str, Any]
ReportFn = Callable[[dict[str, float], Callable[[], Checkpoint]], None]
"""Called about every 10 % of training with the latest metrics and a function that builds the
checkpoint (built only if the caller wants one). Every report carries ``progress``, the count of
finished units of training (epochs, or iterations for the trials that train by iterations), and
``step``, the optimiser steps taken; epoch-based trainers also send ``epoch``."""


def loop_seed(seed: int) -> int:
    """The torch seed of a trial's training loop, independent of its data draws."""
    return int(np.random.SeedSequence([seed, LOOP_STREAM]).generate_state(1)[0])


def step_learning_rate(cfg: TrialConfig, done: int, total: int) -> float:
    """The learning rate of the next epoch or iteration when ``done`` of ``total`` are finished:
    ``lr``, then ``lr/10`` for the last third (the last ``total // 3``) under the ``step``
    schedule (docs/method.md 5.1); ``lr`` throughout under ``constant``."""
    if cfg.lr_schedule == "step" and done >= total - total // 3:
        return cfg.lr / 10.0
    return cfg.lr


def report_epochs(epochs: int) -> set[int]:
    """The epochs (1-based counts of finished epochs) after which progress is reported."""
    every = max(1, math.ceil(epochs / 10))
    return set(range(every, epochs + 1, every)) | {epochs}


class TrialDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class TrainOutcome:
    """What training leaves for the measurements and the store."""

    model: VAEModule
    curves: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0

    @property
    def loss_final(self) -> float:
        return self.curves[-1]["loss"] if self.curves else float("nan")
