"""Entry point of the trainers: train and measure one trial, with no knowledge of Ray or the store."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

import torch

from isosweep.trainers.allocator import keep_freed_memory
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data import make_data
from isosweep.trainers.device import DeviceLike, device_name, resolve
from isosweep.trainers.fused import train_bundle
from isosweep.trainers.kinds import fusable, kind_of
from isosweep.trainers.measure import measure
from isosweep.trainers.metrics import get_metric
from isosweep.trainers.records import TrialResult, TrialStatus
from isosweep.trainers.training import Checkpoint, ReportFn


def _now() -> datetime:
    return datetime.now(timezone.utc)


def provenance(where: DeviceLike = None) -> dict[str, Any]:
    """Where and with what a trial ran: ``device`` is the device it trained on (``where``, default
    the CPU), the GPU's name for a CUDA device."""
    try:
        version = metadata.version("isosweep")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "isosweep_version": version,
        "torch_version": torch.__version__,
        "device": device_name(where),
        "hostname": socket.gethostname(),
    }


def failed_result(cfg: TrialConfig, error: BaseException | str, started_at: datetime | None = None) -> TrialResult:
    """The record of a trial that raised: kept in the store so that nothing disappears silently."""
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return TrialResult(
        cfg, TrialStatus.FAILED, started_at or _now(), _now(), error=message[:2000], provenance=provenance()
    )


def run_mlp_bundle(
    cfgs: Sequence[TrialConfig],
    report: ReportFn | None = None,
    checkpoint: Checkpoint | None = None,
    data_root: str | None = None,
    dtype: torch.dtype = torch.float32,
    where: DeviceLike = None,
) -> list[TrialResult]:
    """Train MLP trials of one fusion key together (``isosweep.trainers.fused``) on device ``where``
    (default the CPU) and measure each there; one result per trial, in order. A diverged member
    gets status ``diverged``; the others are unaffected by it."""
    device = resolve(where)
    started = _now()
    datas = [make_data(cfg, data_root) for cfg in cfgs]
    outcomes = train_bundle(cfgs, datas, report, checkpoint, dtype, device)
    where_run = provenance(device)
    results = []
    for cfg, data, outcome in zip(cfgs, datas, outcomes):
        if outcome.model is None:
            results.append(
                TrialResult(
                    cfg,
                    TrialStatus.DIVERGED,
                    started,
                    _now(),
                    error=outcome.diverged,
                    curves=outcome.curves,
                    provenance=where_run,
                )
            )
            continue
        found = measure(outcome.model, cfg, data.eval, data.eval_log_p, get_metric(cfg.loss), device=device)
        scalars = {"loss_final": outcome.loss_final, "steps": outcome.steps, **found.scalars}
        results.append(
            TrialResult(
                cfg,
                TrialStatus.OK,
                started,
                _now(),
                scalars=scalars,
                dims=found.dims,
                curves=outcome.curves,
                points=found.points,
                provenance=where_run,
            )
        )
    return results


def run_bundle(
    cfgs: Sequence[TrialConfig],
    report: ReportFn | None = None,
    checkpoint: Checkpoint | None = None,
    data_root: str | None = None,
    where: str | None = None,
) -> list[TrialResult]:
    """Train fusable trials (``isosweep.trainers.kinds.fusable``) together, as their kind does, on
    device ``where`` (``"cuda"`` or ``"cpu"``; default the CPU); one result per trial, in order."""
    if not fusable(cfgs):
        raise ValueError("these trials cannot be fused; run them one by one with run_trial")
    keep_freed_memory()
    return kind_of(cfgs[0]).run(cfgs, report, checkpoint, data_root, where)


def run_trial(
    cfg: TrialConfig,
    report: ReportFn | None = None,
    checkpoint: Checkpoint | None = None,
    data_root: str | None = None,
    where: str | None = None,
) -> TrialResult:
    """Train one trial (resuming from ``checkpoint`` if given) and take its measurements, on device
    ``where`` (default: the CPU; an image trial's default is the GPU where there is one).

    The trial's kind (``isosweep.trainers.kinds``) says how it trains. Divergence (a NaN or
    infinite loss) is a result, not an error: it is returned with status ``diverged``. Any other
    exception propagates to the caller, which decides on retries.
    """
    keep_freed_memory()
    return kind_of(cfg).run([cfg], report, checkpoint, data_root, where)[0]
