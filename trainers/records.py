"""The immutable record of one finished trial, whatever its outcome."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from isosweep.trainers.config import TrialConfig

ESTIMATES = ("prior", "elbo", "post", "elbo_metric", "post_metric")
"""The density estimates of log p(x) that a trial with a known density records (docs/method.md
section 4; ``isosweep.trainers.measure``): columns ``corr_<name>`` and ``rank_<name>`` of its
``trials`` row, ``log_<name>`` of its ``points``."""


class TrialStatus(str, enum.Enum):
    """How a trial ended. Failed and diverged trials are recorded too, and retried by a later run."""

    OK = "ok"
    FAILED = "failed"
    DIVERGED = "diverged"


@dataclass(frozen=True)
class TrialResult:
    """Everything one trial contributes to the store: its scalars, per-dim rows, curve, points and files."""

    config: TrialConfig
    status: TrialStatus
    started_at: datetime
    finished_at: datetime
    error: str | None = None
    scalars: dict[str, Any] = field(default_factory=dict)
    dims: list[dict[str, Any]] = field(default_factory=list)
    curves: list[dict[str, float]] = field(default_factory=list)
    points: dict[str, np.ndarray] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    """Files kept beside the rows, by name (e.g. ``traversal.png`` of an image trial)."""

    @property
    def key(self) -> str:
        return self.config.key

    @property
    def wall_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()
