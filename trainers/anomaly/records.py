"""What the anomaly bundles hand on: the snapshot each member keeps, its outcome, or why it diverged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from isosweep.trainers.models import MLPVAE

Tensor = torch.Tensor


@dataclass
class Snapshot:
    """What is kept of the snapshot the trial's ``snapshot_rule`` chose."""

    epoch: int
    val_loss: float | None
    """None where no validation rows are held out (``split`` ``paper``)."""
    state: dict[str, Tensor]
    """The model's parameters at this snapshot, on the CPU (``isosweep.trainers.device.to_cpu``)."""
    scores: np.ndarray
    """Test scores L_x of this snapshot."""
    val_f1: float | None


@dataclass
class AnomalyOutcome:
    model: MLPVAE
    best: Snapshot
    curves: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0


@dataclass
class MemberOutcome:
    """One member of an anomaly bundle: its outcome, or why it diverged (then ``outcome`` is None)."""

    outcome: AnomalyOutcome | None
    diverged: str | None = None
