"""Entry point of the trainers: train and measure one trial, with no knowledge of Ray or the store."""

from __future__ import annotations

import socket
from datetime import datetime, timezone
from importlib import metadata
from typing import Any, Optional

import torch

from trainers.config import TrialConfig
from trainers.data import make_data
from trainers.data.anomaly import is_anomaly_dataset
from trainers.loop import Checkpoint, ReportFn, TrialDiverged, train_model
from trainers.measure import measure
from trainers.metrics import get_metric
from trainers.records import TrialResult, TrialStatus


def _now() -> datetime:
    return datetime.now(timezone.utc)


def provenance() -> dict[str, Any]:
    """Where and with what a trial ran."""
    try:
        version = metadata.version("isosweep")
    except metadata.PackageNotFoundError:
        version = "unknown"
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return {"isosweep_version": version, "torch_version": torch.__version__, "device": device,
            "hostname": socket.gethostname()}


def failed_result(cfg: TrialConfig, error: BaseException | str, started_at: Optional[datetime] = None) -> TrialResult:
    """The record of a trial that raised: kept in the store so that nothing disappears silently."""
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return TrialResult(cfg, TrialStatus.FAILED, started_at or _now(), _now(), error=message[:2000],
                       provenance=provenance())


def run_trial(cfg: TrialConfig, report: Optional[ReportFn] = None,
              checkpoint: Optional[Checkpoint] = None, data_root: Optional[str] = None) -> TrialResult:
    """Train one trial (resuming from ``checkpoint`` if given) and take its measurements.

    Divergence (a NaN or infinite loss) is a result, not an error: it is returned with status
    ``diverged``. Any other exception propagates to the caller, which decides on retries.
    """
    if is_anomaly_dataset(cfg.dataset):
        from trainers.anomaly import run_anomaly_trial

        return run_anomaly_trial(cfg, report, checkpoint, data_root, provenance())
    started = _now()
    data = make_data(cfg, data_root)
    try:
        outcome = train_model(cfg, data, report, checkpoint)
    except TrialDiverged as exc:
        return TrialResult(cfg, TrialStatus.DIVERGED, started, _now(), error=str(exc), provenance=provenance())
    found = measure(outcome.model, cfg, data.eval, data.eval_log_p, get_metric(cfg.loss))
    scalars = {"loss_final": outcome.loss_final, "steps": outcome.steps, **found.scalars}
    return TrialResult(cfg, TrialStatus.OK, started, _now(), scalars=scalars, dims=found.dims,
                       curves=outcome.curves, points=found.points, provenance=provenance())
