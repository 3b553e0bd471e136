"""The evaluation protocol of the anomaly trial (docs/method.md 5.3): each seed's split of the rows, the
threshold at the data set's anomaly ratio, precision, recall and F1 (plain and weighted, for the
validation F1), the no-model reference, the scores of a model, the snapshot epochs and the rule
that keeps one snapshot. NumPy throughout, but for the scores of a model (``model_scores``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from isosweep.trainers.anomaly.records import Snapshot
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data import data_rng
from isosweep.trainers.data.anomaly import LabelledData, minmax
from isosweep.trainers.measure import anomaly_score
from isosweep.trainers.metrics import Metric
from isosweep.trainers.models import MLPVAE

SPLIT_STREAM = 5
SCORE_CHUNK = 16_384
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


def split_rows(
    data: LabelledData, seed: int, val_fraction: float, protocol: str | None = None, scaling: str | None = None
) -> AnomalySplit:
    """Random 50/50 train/test split (seeded), then a ``val_fraction`` validation part of the
    training half's normal rows (at least one row).

    ``protocol`` ``paper`` (``TrialConfig.split``) holds nothing out: every normal row of the training
    half is trained on and ``val_normal`` is empty. ``scaling`` ``train_half`` (``TrialConfig.scaling``)
    takes ``data`` unnormalised (``load_anomaly(..., normalise=False)``) and min-max scales every
    row by the training half's columns alone. Either way the halves are those of the default
    protocol for the same seed, so a setting's trials pair seed by seed with the default's.
    """
    rng = data_rng(seed, SPLIT_STREAM)
    n = data.x.shape[0]
    order = rng.permutation(n)
    train, test = order[: n // 2], order[n // 2 :]
    x = minmax(data.x, reference=data.x[train]) if scaling == "train_half" else data.x
    normal = train[~data.anomaly[train]]
    if protocol == "paper":
        n_val = 0
        if len(normal) < 1:
            raise ValueError(f"{data.name}: the training half has no normal row to train on")
    else:
        n_val = min(len(normal) - 1, max(1, int(round(val_fraction * len(normal)))))
        if n_val < 1:
            raise ValueError(f"{data.name}: the training half has {len(normal)} normal row(s); need at least 2")
    return AnomalySplit(
        fit=x[normal[n_val:]],
        val_normal=x[normal[:n_val]],
        val_anomaly=x[train[data.anomaly[train]]],
        test=x[test],
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


def weighted_detect(
    scores: np.ndarray, anomaly: np.ndarray, weights: np.ndarray, ratio: float
) -> tuple[float, float, float]:
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


def validation_f1(normal_scores: np.ndarray, anomaly_scores: np.ndarray, ratio: float) -> float | None:
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
    1/``snapshots`` of the training, the last one at the end; every epoch where ``snapshots`` is
    at least ``epochs`` (a smoke run of 2 epochs keeps 2 of its 10)."""
    if snapshots >= epochs:  # also bounds the work for a huge count given on the command line
        return list(range(1, epochs + 1))
    return sorted({max(1, (epochs * i) // snapshots) for i in range(1, snapshots + 1)})


def model_scores(model: MLPVAE, x: Tensor, cfg: TrialConfig, metric: Metric) -> np.ndarray:
    """The anomaly score (``isosweep.trainers.measure.anomaly_score``) of every row of ``x``, in chunks."""
    with torch.no_grad():
        parts = [anomaly_score(model, x[s : s + SCORE_CHUNK], cfg, metric) for s in range(0, x.shape[0], SCORE_CHUNK)]
    return torch.cat(parts).double().cpu().numpy() if parts else np.zeros(0)


def keeps(rule: str | None, kept: Snapshot | None, val_loss: float | None, val_f1: float | None) -> bool:
    """Whether a new snapshot replaces ``kept`` under ``rule`` (``TrialConfig.snapshot_rule``):
    None, the lowest validation loss; ``val_f1``, the highest validation F1 (a snapshot with none
    ranks below any that has one; equal F1: the lower validation loss); ``last``, always. Full ties
    keep the earlier snapshot: the order of the ``anomaly_selection`` query, so that a trial with a
    rule gives the F1 that query reads off the default trial's curves."""
    if kept is None or rule == "last":
        return True
    if rule == "val_f1":
        if val_f1 is None or (kept.val_f1 is not None and val_f1 < kept.val_f1):
            return False
        if kept.val_f1 is None or val_f1 > kept.val_f1:
            return True
        return val_loss is not None and kept.val_loss is not None and val_loss < kept.val_loss
    assert val_loss is not None and kept.val_loss is not None, "the validation-loss rule needs validation rows"
    return val_loss < kept.val_loss
