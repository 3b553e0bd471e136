"""The anomaly trial as the trainers run it (the ``anomaly`` kind of ``isosweep.trainers.kinds``):
load and split each member's data, train the bundle (``isosweep.trainers.anomaly.engine``), then
score, threshold and measure each member into its ``TrialResult``."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch

from isosweep.trainers.anomaly.engine import train_anomaly_bundle
from isosweep.trainers.anomaly.protocol import (
    DEFAULT_VAL_FRACTION,
    AnomalySplit,
    detect,
    mean_distance_scores,
    split_rows,
)
from isosweep.trainers.anomaly.records import AnomalyOutcome
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data.anomaly import LabelledData, load_anomaly
from isosweep.trainers.device import DeviceLike, resolve
from isosweep.trainers.measure import measure
from isosweep.trainers.metrics import get_metric
from isosweep.trainers.provenance import now
from isosweep.trainers.records import TrialResult, TrialStatus
from isosweep.trainers.training import Checkpoint, ReportFn

MEASURE_ROWS = 2_000


def anomaly_scalars(
    cfg: TrialConfig, split: AnomalySplit, ratio: float, outcome: AnomalyOutcome, where: DeviceLike = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The trial's scalars (every one a column of the store's ``trials`` table) and per-dim rows,
    measured in float64 on device ``where``."""
    device = resolve(where)
    best = outcome.best
    precision, recall, f1 = detect(best.scores, split.test_anomaly, ratio)
    base = detect(mean_distance_scores(split.fit, split.test), split.test_anomaly, ratio)
    # Rate-distortion and per-dim measurements on (at most MEASURE_ROWS) normal test rows.
    normal_test = split.test[~split.test_anomaly][:MEASURE_ROWS]
    found = measure(outcome.model, cfg, normal_test, None, get_metric(cfg.loss), device=device)
    scalars = dict(found.scalars)
    transform = get_metric(cfg.transform_metric or cfg.loss)
    with torch.no_grad():
        x = torch.as_tensor(normal_test, dtype=torch.float64).to(device)
        model64 = copy.deepcopy(outcome.model).to(device=device, dtype=torch.float64)
        transform_loss = float(transform(x, model64.decode(model64.encode(x)[0]), cfg.reduction).mean())
    coding = scalars.get("coding_loss")
    scalars["transform_loss"] = transform_loss
    scalars["transform_coding_ratio"] = transform_loss / coding if coding else None
    return {
        **scalars,
        "loss_final": outcome.curves[-1]["loss"],
        "steps": outcome.steps,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "val_f1": best.val_f1,
        "val_loss": best.val_loss,
        "snapshot_epoch": best.epoch,
        "anomaly_ratio": ratio,
        "n_fit": int(split.fit.shape[0]),
        "n_test": int(split.test.shape[0]),
        "baseline_precision": base[0],
        "baseline_recall": base[1],
        "baseline_f1": base[2],
    }, found.dims


def _split_identity(cfg: TrialConfig) -> tuple[Any, ...]:
    """What decides a trial's rows: trials that agree on it share one split."""
    return (cfg.dataset, cfg.seed, cfg.val_fraction or DEFAULT_VAL_FRACTION, cfg.split, cfg.scaling)


def run_anomaly_bundle(
    cfgs: Sequence[TrialConfig],
    report: ReportFn | None = None,
    checkpoint: Checkpoint | None = None,
    data_root: str | None = None,
    provenance: dict[str, Any] | None = None,
    where: DeviceLike = None,
) -> list[TrialResult]:
    """Load, split, train together (``train_anomaly_bundle``), score and threshold anomaly trials of
    one fusion key on device ``where``; one result per trial, in order.

    A diverged member is returned with status ``diverged``; a missing or malformed data file raises
    ``DataError`` (recorded as ``failed`` by the caller).
    """
    for cfg in cfgs:
        if cfg.form != "decomposed":
            raise ValueError(f"the anomaly trial trains the decomposed form, got form={cfg.form!r}")
    started = now()
    # One split per data set, seed and split setting, shared by the members (the grid points) that use it.
    loaded: dict[tuple[Any, ...], tuple[LabelledData, AnomalySplit]] = {}
    for cfg in cfgs:
        at = _split_identity(cfg)
        if at not in loaded:
            data = load_anomaly(cfg.dataset, data_root, cfg.seed, normalise=cfg.scaling is None)
            loaded[at] = (data, split_rows(data, cfg.seed, at[2], cfg.split, cfg.scaling))
    pairs = [loaded[_split_identity(c)] for c in cfgs]
    splits, ratios = [p[1] for p in pairs], [p[0].anomaly_ratio for p in pairs]
    members = train_anomaly_bundle(cfgs, splits, ratios, report, checkpoint, where=where)
    results = []
    for cfg, split, ratio, member in zip(cfgs, splits, ratios, members):
        if member.outcome is None:
            results.append(
                TrialResult(
                    cfg, TrialStatus.DIVERGED, started, now(), error=member.diverged, provenance=provenance or {}
                )
            )
            continue
        scalars, dims = anomaly_scalars(cfg, split, ratio, member.outcome, where)
        results.append(
            TrialResult(
                cfg,
                TrialStatus.OK,
                started,
                now(),
                scalars=scalars,
                dims=dims,
                curves=member.outcome.curves,
                provenance=provenance or {},
            )
        )
    return results


def run_anomaly_trial(
    cfg: TrialConfig,
    report: ReportFn | None = None,
    checkpoint: Checkpoint | None = None,
    data_root: str | None = None,
    provenance: dict[str, Any] | None = None,
    where: DeviceLike = None,
) -> TrialResult:
    """Load, split, train with snapshots, score and threshold one anomaly trial (a bundle of one).

    Divergence is returned with status ``diverged``; a missing or malformed data file raises
    ``DataError`` (recorded as ``failed`` by the caller).
    """
    return run_anomaly_bundle([cfg], report, checkpoint, data_root, provenance, where)[0]
