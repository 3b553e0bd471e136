"""The anomaly-detection trial of METHOD.md section 5.3 (paper, section 5.3 and table 5).

Per seed: a random 50/50 split of the data set; a VAE with the decomposed objective
``lambda1 * D_T(x, x_breve) + lambda2 * se(x_breve, x_hat) + KL`` is trained on the normal rows of
the training half, less a validation part (``val_fraction``). Of ``snapshots`` snapshots, one every
1/``snapshots`` of the epochs, the one with the lowest validation loss (fixed, seeded noise draws)
is kept. Every test row is scored with ``L_x`` (conventional formula, ``beta = 1/lambda2``, ``E_q[D]``
by the mu +- sigma average: ``isosweep.trainers.measure.score_lx``); the rows whose score is strictly above
the ``(1 - r)`` quantile of the test scores are flagged, ``r`` the data set's anomaly ratio, and
precision, recall and F1 of the anomaly class are reported.

Two more numbers per trial:

- ``val_f1``: F1 on a validation set of the training half (its held-out normal rows and its
  anomaly rows, none of which is trained on) at the same ratio ``r`` **(choice)**: the training
  half's anomalies far outnumber the held-out normal rows, so each normal row is weighted to
  restore the anomaly share ``r`` before the top ``r`` is flagged. It estimates the test F1 without
  looking at the test half, and selects grid points.
- ``baseline_*``: a reference with no model, score = Euclidean distance to the mean of the normal
  training rows, thresholded the same way.

Training is full-batch when the training rows fit in one batch; the loss terms are summed on the
tensor side and read back only at the snapshot points, so no step waits on a ``.item()``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

import numpy as np
import torch

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data import data_rng
from isosweep.trainers.data.anomaly import LabelledData, load_anomaly
from isosweep.trainers.measure import measure, score_lx
from isosweep.trainers.metrics import Metric, get_metric
from isosweep.trainers.models import MLPVAE, build_model
from isosweep.trainers.objective import objective_terms
from isosweep.trainers.records import TrialResult, TrialStatus
from isosweep.trainers.training import CURVE_TERMS, Checkpoint, ReportFn, TrialDiverged, loop_seed, step_learning_rate

SPLIT_STREAM = 5
VAL_NOISE_STREAM = 6
SCORE_CHUNK = 16_384
MEASURE_ROWS = 2_000
DEFAULT_SNAPSHOTS = 10
DEFAULT_VAL_FRACTION = 0.1

Tensor = torch.Tensor


# -- split, threshold, F1 -----------------------------------------------------------------------

@dataclass(frozen=True)
class AnomalySplit:
    """One seed's rows: what is trained on, what selects the snapshot, and what is scored."""

    fit: np.ndarray
    """Normal rows of the training half that are trained on."""
    val_normal: np.ndarray
    """Normal rows of the training half held out (validation loss, snapshot selection)."""
    val_anomaly: np.ndarray
    """Anomaly rows of the training half (never trained on; only in ``val_f1``)."""
    test: np.ndarray
    """Rows of the test half."""
    test_anomaly: np.ndarray
    """(n_test,) bool labels of the test rows."""


def split_rows(data: LabelledData, seed: int, val_fraction: float) -> AnomalySplit:
    """Random 50/50 train/test split (seeded), then a ``val_fraction`` validation part of the
    training half's normal rows (at least one row)."""
    rng = data_rng(seed, SPLIT_STREAM)
    n = data.x.shape[0]
    order = rng.permutation(n)
    train, test = order[: n // 2], order[n // 2:]
    normal = train[~data.anomaly[train]]
    n_val = min(len(normal) - 1, max(1, int(round(val_fraction * len(normal)))))
    if n_val < 1:
        raise ValueError(f"{data.name}: the training half has {len(normal)} normal row(s); need at least 2")
    return AnomalySplit(
        fit=data.x[normal[n_val:]],
        val_normal=data.x[normal[:n_val]],
        val_anomaly=data.x[train[data.anomaly[train]]],
        test=data.x[test],
        test_anomaly=data.anomaly[test].copy(),
    )


def flag_top(scores: np.ndarray, ratio: float) -> np.ndarray:
    """Flag the scores strictly above the ``(1 - ratio)`` quantile of ``scores`` (linear
    interpolation, NumPy's default)."""
    scores = np.asarray(scores, dtype=np.float64)
    return scores > np.quantile(scores, 1.0 - ratio)


def precision_recall_f1(flagged: np.ndarray, anomaly: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F1 of the anomaly class; 0 where a ratio has no denominator."""
    flagged, anomaly = np.asarray(flagged, dtype=bool), np.asarray(anomaly, dtype=bool)
    tp = float(np.sum(flagged & anomaly))
    precision = tp / float(flagged.sum()) if flagged.any() else 0.0
    recall = tp / float(anomaly.sum()) if anomaly.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def detect(scores: np.ndarray, anomaly: np.ndarray, ratio: float) -> tuple[float, float, float]:
    """Precision, recall and F1 when the top ``ratio`` share of ``scores`` is flagged."""
    return precision_recall_f1(flag_top(scores, ratio), anomaly)


def weighted_detect(scores: np.ndarray, anomaly: np.ndarray, weights: np.ndarray,
                    ratio: float) -> tuple[float, float, float]:
    """Precision, recall and F1 when rows are flagged from the highest score down while their
    cumulative weight stays within ``ratio`` of the total weight; counts are weighted."""
    scores, anomaly = np.asarray(scores, dtype=np.float64), np.asarray(anomaly, dtype=bool)
    weights = np.asarray(weights, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    within = np.cumsum(weights[order]) <= ratio * weights.sum() * (1.0 + 1e-12)
    flagged = np.zeros(len(scores), dtype=bool)
    flagged[order[within]] = True
    tp = float(weights[flagged & anomaly].sum())
    flagged_w, anomaly_w = float(weights[flagged].sum()), float(weights[anomaly].sum())
    precision = tp / flagged_w if flagged_w > 0 else 0.0
    recall = tp / anomaly_w if anomaly_w > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def validation_f1(normal_scores: np.ndarray, anomaly_scores: np.ndarray, ratio: float) -> Optional[float]:
    """F1 on the validation rows at the data set's anomaly ratio ``r``: each normal row weighs
    ``n_anomaly (1 - r) / (r n_normal)``, so that the weighted anomaly share is ``r`` as on the test
    half, and the top ``r`` of the weight is flagged."""
    n_normal, n_anomaly = len(normal_scores), len(anomaly_scores)
    if n_anomaly == 0 or n_normal == 0:
        return None
    scores = np.concatenate([normal_scores, anomaly_scores])
    labels = np.concatenate([np.zeros(n_normal, bool), np.ones(n_anomaly, bool)])
    weights = np.where(labels, 1.0, n_anomaly * (1.0 - ratio) / (ratio * n_normal))
    return weighted_detect(scores, labels, weights, ratio)[2]


def mean_distance_scores(fit: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The no-model reference: Euclidean distance of each row to the mean of the training rows."""
    centre = fit.astype(np.float64).mean(axis=0)
    return np.linalg.norm(x.astype(np.float64) - centre, axis=1)


# -- training with snapshots ---------------------------------------------------------------------

def snapshot_epochs(epochs: int, snapshots: int) -> list[int]:
    """The epochs (1-based counts of finished epochs) after which a snapshot is taken: every
    1/``snapshots`` of the training, the last one at the end."""
    return sorted({max(1, (epochs * i) // snapshots) for i in range(1, snapshots + 1)})


def _adam(model: torch.nn.Module, lr: float) -> torch.optim.Adam:
    """Adam with the fused CPU/GPU kernel where this torch has one (fewer ops per step)."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(model.parameters(), lr=lr)


@dataclass
class Snapshot:
    """What is kept of the snapshot with the lowest validation loss."""

    epoch: int
    val_loss: float
    state: dict[str, Tensor]
    scores: np.ndarray
    """Test scores L_x of this snapshot."""
    val_f1: Optional[float]


@dataclass
class AnomalyOutcome:
    model: MLPVAE
    best: Snapshot
    curves: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0


def _scores(model: MLPVAE, x: Tensor, cfg: TrialConfig, metric: Metric) -> np.ndarray:
    with torch.no_grad():
        parts = [score_lx(model, x[s:s + SCORE_CHUNK], cfg, metric) for s in range(0, x.shape[0], SCORE_CHUNK)]
    return torch.cat(parts).double().numpy()


def train_anomaly(cfg: TrialConfig, split: AnomalySplit, ratio: float, report: Optional[ReportFn] = None,
                  checkpoint: Optional[Checkpoint] = None) -> AnomalyOutcome:
    """Train on ``split.fit`` with snapshots; resume from ``checkpoint`` when given."""
    metric = get_metric(cfg.loss)
    transform = get_metric(cfg.transform_metric or cfg.loss)
    dtype = torch.float32
    model = build_model(split.fit.shape[1], cfg.hidden, cfg.latent_dim, cfg.activation, cfg.seed).to(dtype)
    optimiser = _adam(model, cfg.lr)
    gen = torch.Generator().manual_seed(loop_seed(cfg.seed))
    x_fit = torch.as_tensor(split.fit, dtype=dtype)
    x_val = torch.as_tensor(split.val_normal, dtype=dtype)
    x_val_anomaly = torch.as_tensor(split.val_anomaly, dtype=dtype)
    x_test = torch.as_tensor(split.test, dtype=dtype)
    val_gen = torch.Generator().manual_seed(int(np.random.SeedSequence([cfg.seed, VAL_NOISE_STREAM]).generate_state(1)[0]))
    val_eps = torch.randn(x_val.shape[0], cfg.latent_dim, generator=val_gen, dtype=dtype)

    curves: list[dict[str, Any]] = []
    best: Optional[Snapshot] = None
    steps, start_epoch = 0, 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimiser.load_state_dict(checkpoint["optimiser"])
        gen.set_state(checkpoint["generator"])
        curves = list(checkpoint["curves"])
        steps, start_epoch = int(checkpoint["steps"]), int(checkpoint["epoch"])
        best = checkpoint["best"]

    n, bs = x_fit.shape[0], cfg.batch_size
    snaps = snapshot_epochs(cfg.epochs, cfg.snapshots or DEFAULT_SNAPSHOTS)
    sums = torch.zeros(len(CURVE_TERMS), dtype=torch.float64)
    model.train()
    for epoch in range(start_epoch, cfg.epochs):
        lr = step_learning_rate(cfg, epoch, cfg.epochs)
        for group in optimiser.param_groups:
            group["lr"] = lr
        last = (epoch + 1) in snaps
        if last:
            sums.zero_()
        # One batch holds every row: the order within it changes nothing, so no permutation.
        order = torch.randperm(n, generator=gen) if n > bs else None
        for start in range(0, n, bs):
            x = x_fit if order is None else x_fit[order[start:start + bs]]
            eps = torch.randn(x.shape[0], cfg.latent_dim, generator=gen, dtype=dtype)
            terms = objective_terms(model, x, eps, cfg, metric, transform)
            loss = terms["loss"].mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            steps += 1
            if last:
                with torch.no_grad():
                    sums += torch.stack([terms[t].detach().sum() for t in CURVE_TERMS]).double()
        if not last:
            continue

        # A snapshot: validation loss, validation F1, test F1.
        model.eval()
        with torch.no_grad():
            val_loss = float(objective_terms(model, x_val, val_eps, cfg, metric, transform)["loss"].mean())
        means = (sums / n).tolist()
        if not all(math.isfinite(v) for v in [*means, val_loss]):
            raise TrialDiverged(f"loss became {means[0]} (validation {val_loss}) by epoch {epoch + 1}")
        test_scores = _scores(model, x_test, cfg, metric)
        val_f1 = validation_f1(_scores(model, x_val, cfg, metric), _scores(model, x_val_anomaly, cfg, metric), ratio)
        _, _, f1 = detect(test_scores, split.test_anomaly, ratio)
        row = {"step": steps, "epoch": epoch + 1, **dict(zip(CURVE_TERMS, means)), "val_loss": val_loss,
               "val_f1": val_f1, "f1": f1}
        curves.append(row)
        if best is None or val_loss < best.val_loss:
            best = Snapshot(epoch + 1, val_loss, copy.deepcopy(model.state_dict()), test_scores, val_f1)
        model.train()
        if report is not None:
            done_epoch, done_steps, kept = epoch + 1, steps, best

            def make_checkpoint(done_epoch: int = done_epoch, done_steps: int = done_steps,
                                kept: Snapshot = kept) -> Checkpoint:
                # A copy: the live tensors go on changing in place as training continues.
                return copy.deepcopy({"epoch": done_epoch, "model": model.state_dict(),
                                      "optimiser": optimiser.state_dict(), "generator": gen.get_state(),
                                      "curves": list(curves), "steps": done_steps, "best": kept})

            report({"progress": epoch + 1, **{k: v for k, v in row.items() if v is not None}}, make_checkpoint)
    assert best is not None
    model.load_state_dict(best.state)
    model.eval()
    return AnomalyOutcome(model, best, curves, steps)


# -- the trial --------------------------------------------------------------------------------

def _now() -> datetime:
    return datetime.now(timezone.utc)


def anomaly_scalars(cfg: TrialConfig, split: AnomalySplit, ratio: float,
                    outcome: AnomalyOutcome) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The trial's scalars (every one a column of the store's ``trials`` table) and per-dim rows."""
    best = outcome.best
    precision, recall, f1 = detect(best.scores, split.test_anomaly, ratio)
    base = detect(mean_distance_scores(split.fit, split.test), split.test_anomaly, ratio)
    # Rate-distortion and per-dim measurements on (at most MEASURE_ROWS) normal test rows.
    normal_test = split.test[~split.test_anomaly][:MEASURE_ROWS]
    found = measure(outcome.model, cfg, normal_test, None, get_metric(cfg.loss))
    scalars = dict(found.scalars)
    transform = get_metric(cfg.transform_metric or cfg.loss)
    with torch.no_grad():
        x = torch.as_tensor(normal_test, dtype=torch.float64)
        model64 = copy.deepcopy(outcome.model).to(torch.float64)
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


def run_anomaly_trial(cfg: TrialConfig, report: Optional[ReportFn] = None, checkpoint: Optional[Checkpoint] = None,
                      data_root: Optional[str] = None, provenance: Optional[dict[str, Any]] = None) -> TrialResult:
    """Load, split, train with snapshots, score and threshold one anomaly trial.

    Divergence is returned with status ``diverged``; a missing or malformed data file raises
    ``DataError`` (recorded as ``failed`` by the caller).
    """
    if cfg.form != "decomposed":
        raise ValueError(f"the anomaly trial trains the decomposed form, got form={cfg.form!r}")
    started = _now()
    data = load_anomaly(cfg.dataset, data_root, cfg.seed)
    split = split_rows(data, cfg.seed, cfg.val_fraction or DEFAULT_VAL_FRACTION)
    try:
        outcome = train_anomaly(cfg, split, data.anomaly_ratio, report, checkpoint)
    except TrialDiverged as exc:
        return TrialResult(cfg, TrialStatus.DIVERGED, started, _now(), error=str(exc), provenance=provenance or {})
    scalars, dims = anomaly_scalars(cfg, split, data.anomaly_ratio, outcome)
    return TrialResult(cfg, TrialStatus.OK, started, _now(), scalars=scalars, dims=dims, curves=outcome.curves,
                       provenance=provenance or {})
