"""Training of one trial: a bundle of one (``isosweep.trainers.fused``), so that a trial trained alone and
the same trial trained in a bundle run through the same code and get the same draws.

Every random draw (initialisation, batch order, reparameterisation noise) comes from generators
seeded by the trial's own seed, and the generator state is part of the checkpoint, so a run
restored from a checkpoint continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data import TrialData
from isosweep.trainers.fused import (CURVE_TERMS, Checkpoint, ReportFn, learning_rate, loop_seed, report_epochs,
                            train_bundle)
from isosweep.trainers.models import MLPVAE

__all__ = ["CURVE_TERMS", "Checkpoint", "ReportFn", "TrainOutcome", "TrialDiverged", "learning_rate",
           "loop_seed", "report_epochs", "train_model"]


class TrialDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class TrainOutcome:
    """What training leaves for the measurements and the store."""

    model: MLPVAE
    curves: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0

    @property
    def loss_final(self) -> float:
        return self.curves[-1]["loss"] if self.curves else float("nan")


def train_model(
    cfg: TrialConfig,
    data: TrialData,
    report: Optional[ReportFn] = None,
    checkpoint: Optional[Checkpoint] = None,
    dtype: torch.dtype = torch.float32,
) -> TrainOutcome:
    """Train one trial's model; resume from ``checkpoint`` when given. Raises TrialDiverged."""
    (outcome,) = train_bundle([cfg], [data], report, checkpoint, dtype)
    if outcome.diverged is not None or outcome.model is None:
        raise TrialDiverged(outcome.diverged or "diverged")
    return TrainOutcome(outcome.model, outcome.curves, outcome.steps)
