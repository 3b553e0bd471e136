"""The ``mlp`` kind's runner: MLP trials of one fusion key trained together as one fused bundle
(``isosweep.trainers.fused``), then each measured (``isosweep.trainers.measure``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data import make_data
from isosweep.trainers.device import DeviceLike, resolve
from isosweep.trainers.fused import train_bundle
from isosweep.trainers.measure import measure
from isosweep.trainers.metrics import get_metric
from isosweep.trainers.provenance import now, provenance
from isosweep.trainers.records import TrialResult, TrialStatus
from isosweep.trainers.training import Checkpoint, ReportFn


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
    started = now()
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
                    now(),
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
                now(),
                scalars=scalars,
                dims=found.dims,
                curves=outcome.curves,
                points=found.points,
                provenance=where_run,
            )
        )
    return results
