"""The anomaly-detection trial of METHOD.md section 5.3 (paper, section 5.3 and table 5).

Per seed: a random 50/50 split of the data set; a VAE with the decomposed objective
``lambda1 * D_T(x, x_breve) + lambda2 * se(x_breve, x_hat) + KL`` is trained on the normal rows of
the training half, less a validation part (``val_fraction``). Of ``snapshots`` snapshots, one every
1/``snapshots`` of the epochs, one is kept by the trial's ``snapshot_rule``: the studies plan the
best validation F1 (below); a config that names no rule keeps the lowest validation loss (fixed,
seeded noise draws), the studies' rule before. Every test row is scored with ``L_x`` (conventional formula, ``beta = 1/lambda2``, ``E_q[D]``
by the mu +- sigma average: ``isosweep.trainers.measure.score_lx``); the rows whose score is strictly above
the ``(1 - r)`` quantile of the test scores are flagged, ``r`` the data set's anomaly ratio, and
precision, recall and F1 of the anomaly class are reported.

Recorded settings (``TrialConfig``; METHOD.md 5.3) change one step of this protocol each, for a
seed keeping the default's halves, initial weights and noise so that their trials pair seed by seed
with the default's: ``split`` (``paper``: nothing held out), ``scaling`` (``train_half``: min-max
over the training half), ``snapshot_rule`` (``val_f1``, ``last``), ``score`` (``recon``: L_x less
its KL term) and ``output_activation``.

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

The trials of one data set (grid points and seeds: one fusion key) train as one bundle
(``train_anomaly_bundle``): stacked models (``isosweep.trainers.stacked.StackedVAE``) over the members'
own splits and random streams, each member with its own snapshots, F1 and curves, on the device
the trial is given (``isosweep.trainers.device``). A trial alone is a bundle of one, trained with
the unbundled trial's own operations, so its results are bit for bit those of earlier releases.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import torch

from isosweep.trainers.capture import stacked_adam
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data import data_rng
from isosweep.trainers.data.anomaly import LabelledData, load_anomaly, minmax
from isosweep.trainers.device import DeviceLike, draw_on_cpu, resolve, to_cpu
from isosweep.trainers.fused import check_bundle
from isosweep.trainers.measure import anomaly_score, measure
from isosweep.trainers.metrics import Metric, get_metric
from isosweep.trainers.models import MLPVAE, build_model
from isosweep.trainers.objective import objective_terms
from isosweep.trainers.records import TrialResult, TrialStatus
from isosweep.trainers.stacked import MemberLosses, StackedVAE, freeze_member
from isosweep.trainers.training import CURVE_TERMS, Checkpoint, ReportFn, TrialDiverged, loop_seed, step_learning_rate

SPLIT_STREAM = 5
VAL_NOISE_STREAM = 6
SCORE_CHUNK = 16_384
MEASURE_ROWS = 2_000
DEFAULT_SNAPSHOTS = 10
DEFAULT_VAL_FRACTION = 0.1
CPU_UNIT_MEMBERS = 16
"""At most this many members step as one stacked model on a CPU; a larger bundle trains as several
such units side by side. On a CPU the stacked step is bound by its arithmetic and by the caches.
Measured on this project's 2-core CPU (training alone, one thread, Thyroid, 100 epochs, two runs),
member-epochs per second for units of K members: K = 1 (the unbundled trial's code) 147-155,
8: 305-318, 12: 304-323, 16: 329-350, 25: 300-309.
On a GPU one unit holds the whole bundle."""

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


def _scores(model: MLPVAE, x: Tensor, cfg: TrialConfig, metric: Metric) -> np.ndarray:
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


def batches_per_epoch(n_fit: int, batch_size: int) -> int:
    """Optimiser steps per epoch of a member with ``n_fit`` training rows."""
    return math.ceil(n_fit / batch_size)


class _Unit:
    """The members of a bundle that step together: one batch schedule (the same number of batches
    per epoch), hence one Adam step count.

    More than one member: one ``StackedVAE`` (``isosweep.trainers.stacked``) with the shared
    objective (``MemberLosses``, the ``vae_terms`` of ``isosweep.trainers.objective``), one Adam over
    the stacked tensors (exactly K independent Adams). Rows are padded to the largest member's
    count and masked (see ``train_anomaly_bundle``). One member: its own ``MLPVAE`` and
    ``objective_terms``, the exact operations of a trial trained alone, so that a bundle of one
    gives bit for bit the results of the unbundled trial.
    """

    def __init__(
        self,
        members: list[int],
        cfgs: Sequence[TrialConfig],
        counts: list[int],
        input_dim: int,
        dtype: torch.dtype,
        where: torch.device,
    ):
        self.members = members
        mine = [cfgs[i] for i in members]
        ref = mine[0]
        self.templates = [
            build_model(input_dim, c.hidden, c.latent_dim, c.activation, c.seed, c.output_activation).to(dtype)
            for c in mine
        ]
        self.counts = counts
        self.width = max(counts)
        self.n_batches = batches_per_epoch(self.width, ref.batch_size)
        self.ragged = len(set(counts)) > 1
        self.steps = 0
        if len(members) == 1:
            self.single: MLPVAE | None = self.templates[0].to(where)
            self.stacked: StackedVAE | None = None
            self.params = list(self.single.parameters())
            self.cfg, self.metric = ref, get_metric(ref.loss)
            self.transform = get_metric(ref.transform_metric or ref.loss)
        else:
            self.single = None
            self.views: dict[int, MLPVAE] = {}
            self.stacked = StackedVAE.from_models(self.templates, ref.activation, dtype, where, feature_major=True)
            self.params = self.stacked.parameters()
            self.losses = MemberLosses(mine, dtype, where)
        self.optimiser = stacked_adam(self.params, ref.lr)
        self.weight = torch.ones(len(members), dtype=dtype, device=where)
        # (K, width) validity of each padded row position, and its count per batch.
        self.valid = (torch.arange(self.width).unsqueeze(0) < torch.tensor(counts).unsqueeze(1)).to(dtype).to(where)

    def terms(self, x: Tensor, eps: Tensor) -> dict[str, Tensor]:
        """(K, B) per-sample terms of every member on (K, B, m) inputs."""
        if self.single is not None:
            found = objective_terms(self.single, x[0], eps[0], self.cfg, self.metric, self.transform)
            return {name: value.unsqueeze(0) for name, value in found.items()}
        assert self.stacked is not None
        return self.losses.terms(self.stacked, x, eps)

    def loss(self, per_sample: Tensor, start: int) -> Tensor:
        """The sum over members of each member's mean loss over its own rows of this batch."""
        if self.single is not None:
            return per_sample[0].mean()
        if not self.ragged:
            return (per_sample.mean(dim=1) * self.weight).sum()
        # Padded rows (beyond a member's count) weigh 0; each member's mean is over its own rows.
        valid = self.valid[:, start : start + per_sample.shape[1]]
        return ((per_sample * valid).sum(dim=1) / valid.sum(dim=1) * self.weight).sum()

    def member(self, j: int) -> MLPVAE:
        """Member j as an MLPVAE on the unit's device (the live model for a unit of one; for a
        stacked unit, one model per member refreshed with its current parameters)."""
        if self.single is not None:
            return self.single
        assert self.stacked is not None
        if j not in self.views:
            self.views[j] = self.stacked.member(j, self.templates[j])
            return self.views[j]
        return self.stacked.load_member(j, self.views[j])

    def freeze(self, j: int) -> None:
        if self.stacked is not None:
            freeze_member(j, self.params, self.optimiser, self.weight)

    def state(self) -> dict[str, Any]:
        return {
            "params": to_cpu(self.params),
            "optimiser": to_cpu(self.optimiser.state_dict()),
            "steps": self.steps,
            "weight": to_cpu(self.weight),
        }

    def load(self, saved: dict[str, Any]) -> None:
        with torch.no_grad():
            for p, value in zip(self.params, saved["params"]):
                p.copy_(value)
            self.weight.copy_(saved["weight"])
        self.optimiser.load_state_dict(saved["optimiser"])
        self.steps = int(saved["steps"])


def _val_noise(cfg: TrialConfig, rows: int, dtype: torch.dtype) -> Tensor:
    """The fixed noise of the validation loss (seeded, drawn on the CPU), so that the snapshot
    choice is repeatable."""
    val_gen = torch.Generator().manual_seed(
        int(np.random.SeedSequence([cfg.seed, VAL_NOISE_STREAM]).generate_state(1)[0])
    )
    return torch.randn(rows, cfg.latent_dim, generator=val_gen, dtype=dtype)


def default_unit_members(where: torch.device) -> int | None:
    """Members per stacked unit: ``CPU_UNIT_MEMBERS`` on a CPU, the whole bundle (None) on a GPU."""
    return CPU_UNIT_MEMBERS if where.type == "cpu" else None


def train_anomaly_bundle(
    cfgs: Sequence[TrialConfig],
    splits: Sequence[AnomalySplit],
    ratios: Sequence[float],
    report: ReportFn | None = None,
    checkpoint: Checkpoint | None = None,
    dtype: torch.dtype = torch.float32,
    where: DeviceLike = None,
    unit_members: int | None = -1,
) -> list[MemberOutcome]:
    """Train anomaly trials of one fusion key together on device ``where``, each on its own
    ``split.fit`` with its own snapshots; resume from ``checkpoint`` when given.

    Each member keeps everything of a trial trained alone (METHOD.md 5.3): its split, its random
    stream (batch order, then the noise of each batch, from its own CPU generator in the order the
    unbundled trial draws them: ``isosweep.trainers.device``), its fixed validation noise, its
    snapshots chosen by its validation loss, its F1 and curves. A member whose loss or validation
    loss is not finite at a snapshot is frozen and recorded as diverged (the message the unbundled
    trial raises); the others go on.

    Splits of different seeds differ in size (a few rows for Thyroid). Members with the same number
    of batches per epoch can step together, their rows padded to the largest count and masked, so
    each member's loss is the mean over its own rows. Members with another number of batches
    (KDDCup's seeds can differ by one) form their own unit, since Adam's step count is shared by a
    stacked tensor; the units train epoch by epoch side by side. A unit holds at most
    ``unit_members`` members (-1: ``default_unit_members`` of the device; None: no limit), cut from
    the members sorted by split size. So on a GPU one masked unit holds a bundle's seeds (masking:
    one wide model instead of one per split size), while on a CPU, whose units are small anyway,
    they are grouped by split size and mask only where a unit straddles two sizes
    (``benchmarks/anomaly_fusion.py`` measures both).
    """
    check_bundle(cfgs)
    device = resolve(where)
    ref = cfgs[0]
    k_members, bs, latent = len(cfgs), ref.batch_size, ref.latent_dim
    metrics = [get_metric(c.loss) for c in cfgs]
    transforms = [get_metric(c.transform_metric or c.loss) for c in cfgs]
    # The training rows of each distinct split once on the device (members of one seed share theirs),
    # and one row of zeros last: padded and frozen positions read it.
    fits: dict[int, int] = {}
    blocks: list[np.ndarray] = []
    offsets = []
    for split in splits:
        if id(split.fit) not in fits:
            fits[id(split.fit)] = sum(b.shape[0] for b in blocks)
            blocks.append(split.fit)
        offsets.append(fits[id(split.fit)])
    input_dim = splits[0].fit.shape[1]
    x_store = torch.as_tensor(
        np.concatenate([*blocks, np.zeros((1, input_dim), dtype=blocks[0].dtype)]), dtype=dtype
    ).to(device)
    zero_row = x_store.shape[0] - 1
    counts = [int(s.fit.shape[0]) for s in splits]
    # Each split's evaluation rows once on the device, shared by the members that use the split
    # (KDDCup's test half alone is 120 MB).
    on_device: dict[int, tuple[Tensor, Tensor, Tensor]] = {}
    for split in splits:
        if id(split) not in on_device:
            on_device[id(split)] = tuple(
                torch.as_tensor(rows, dtype=dtype).to(device)  # type: ignore[assignment]
                for rows in (split.val_normal, split.val_anomaly, split.test)
            )
    x_val, x_val_anomaly, x_test = ([on_device[id(s)][i] for s in splits] for i in range(3))
    val_eps = [_val_noise(c, s.val_normal.shape[0], dtype).to(device) for c, s in zip(cfgs, splits)]

    by_schedule: dict[int, list[int]] = {}
    for k, n in enumerate(counts):
        by_schedule.setdefault(batches_per_epoch(n, bs), []).append(k)
    cap = default_unit_members(device) if unit_members == -1 else unit_members
    groups: list[list[int]] = []
    for members in by_schedule.values():
        # Units of nearly equal size, each at most `cap` members, cut from the members sorted by
        # split size: a unit then mixes sizes (and masks) only where it must.
        ordered = sorted(members, key=lambda k: (counts[k], k))
        count = math.ceil(len(ordered) / cap) if cap else 1
        size, extra = divmod(len(ordered), count)
        starts = [i * size + min(i, extra) for i in range(count + 1)]
        groups.extend(ordered[starts[i] : starts[i + 1]] for i in range(count))
    units = [_Unit(members, cfgs, [counts[k] for k in members], input_dim, dtype, device) for members in groups]
    gens = [torch.Generator().manual_seed(loop_seed(c.seed)) for c in cfgs]
    shuffled = [c.batch_order is None for c in cfgs]
    curves: list[list[dict[str, Any]]] = [[] for _ in cfgs]
    best: list[Snapshot | None] = [None] * k_members
    diverged: list[str | None] = [None] * k_members
    start_epoch = 0
    if checkpoint is not None:
        for unit, saved in zip(units, checkpoint["units"]):
            unit.load(saved)
        for g, state in zip(gens, checkpoint["generators"]):
            g.set_state(state)
        curves = [list(c) for c in checkpoint["curves"]]
        best, diverged = list(checkpoint["best"]), list(checkpoint["diverged"])
        start_epoch = int(checkpoint["epoch"])

    snaps = snapshot_epochs(ref.epochs, ref.snapshots or DEFAULT_SNAPSHOTS)
    sums = [torch.zeros(len(CURVE_TERMS), dtype=torch.float64, device=device) for _ in cfgs]
    for epoch in range(start_epoch, ref.epochs):
        lr = step_learning_rate(ref, epoch, ref.epochs)
        last = (epoch + 1) in snaps
        for unit in units:
            for group in unit.optimiser.param_groups:
                group["lr"] = lr
            if unit.single is not None:
                unit.single.train()
            _train_epoch(
                unit,
                gens,
                offsets,
                zero_row,
                diverged,
                shuffled,
                x_store,
                latent,
                bs,
                sums if last else None,
                dtype,
                device,
            )
        if not last:
            continue

        # A snapshot of every live member: validation loss, validation F1, test F1.
        rows: list[dict[str, Any]] = []
        for unit in units:
            for j, k in enumerate(unit.members):
                if diverged[k] is not None:
                    continue
                cfg, model = cfgs[k], unit.member(j)
                model.eval()
                val_loss: float | None = None
                if x_val[k].shape[0]:
                    with torch.no_grad():
                        val_loss = float(
                            objective_terms(model, x_val[k], val_eps[k], cfg, metrics[k], transforms[k])["loss"].mean()
                        )
                means = (sums[k] / counts[k]).tolist()
                sums[k].zero_()
                if not all(math.isfinite(v) for v in [*means, *([] if val_loss is None else [val_loss])]):
                    diverged[k] = f"loss became {means[0]} (validation {val_loss}) by epoch {epoch + 1}"
                    unit.freeze(j)
                    continue
                test_scores = _scores(model, x_test[k], cfg, metrics[k])
                val_f1 = validation_f1(
                    _scores(model, x_val[k], cfg, metrics[k]),
                    _scores(model, x_val_anomaly[k], cfg, metrics[k]),
                    ratios[k],
                )
                _, _, f1 = detect(test_scores, splits[k].test_anomaly, ratios[k])
                row = {
                    "step": unit.steps,
                    "epoch": epoch + 1,
                    **dict(zip(CURVE_TERMS, means)),
                    "val_loss": val_loss,
                    "val_f1": val_f1,
                    "f1": f1,
                }
                curves[k].append(row)
                rows.append(row)
                if keeps(cfg.snapshot_rule, best[k], val_loss, val_f1):
                    best[k] = Snapshot(epoch + 1, val_loss, to_cpu(model.state_dict()), test_scores, val_f1)
        if all(d is not None for d in diverged):
            break
        if report is not None:
            done_epoch = epoch + 1

            def make_checkpoint(done_epoch: int = done_epoch) -> Checkpoint:
                return {
                    "epoch": done_epoch,
                    "units": [u.state() for u in units],
                    "generators": [g.get_state() for g in gens],
                    "curves": [list(c) for c in curves],
                    "best": to_cpu(best),
                    "diverged": list(diverged),
                }

            # samples: member-samples trained so far (each member passes over its fit rows each epoch).
            report({"progress": done_epoch, "samples": done_epoch * sum(counts), **_mean_row(rows)}, make_checkpoint)

    outcomes = []
    for unit in units:
        for j, k in enumerate(unit.members):
            kept = best[k]
            if diverged[k] is not None or kept is None:
                outcomes.append((k, MemberOutcome(None, diverged[k] or "no snapshot was taken")))
                continue
            model = unit.member(j)
            model.load_state_dict(kept.state)
            model.eval()
            outcomes.append((k, MemberOutcome(AnomalyOutcome(model, kept, curves[k], unit.steps))))
    return [o for _, o in sorted(outcomes, key=lambda pair: pair[0])]


def _mean_row(rows: list[dict[str, Any]]) -> dict[str, float]:
    """A progress report's metrics: each snapshot value's mean over the members that have one
    (a bundle of one reports its own row)."""
    names = [name for name in rows[0] if all(r.get(name) is not None for r in rows)] if rows else []
    return {name: float(np.mean([r[name] for r in rows])) if len(rows) > 1 else rows[0][name] for name in names}


def _train_epoch(
    unit: _Unit,
    gens: Sequence[torch.Generator],
    offsets: Sequence[int],
    zero_row: int,
    diverged: Sequence[str | None],
    shuffled: Sequence[bool],
    x_store: Tensor,
    latent: int,
    bs: int,
    sums: list[Tensor] | None,
    dtype: torch.dtype,
    device: torch.device,
) -> None:
    """One epoch of one unit. ``shuffled[k]``: member k walks its rows in a new permutation
    (``TrialConfig.batch_order``), else in its split's order. ``sums`` (a snapshot epoch): add each
    member's summed curve terms over its own rows."""
    width = unit.width
    index = torch.full((len(unit.members), width), zero_row, dtype=torch.long)
    noise = torch.zeros(len(unit.members), width, latent, dtype=dtype)
    for j, k in enumerate(unit.members):
        if diverged[k] is not None:
            continue  # frozen: reads the zero row with zero noise
        n = unit.counts[j]
        # The draws of a trial trained alone, in its order: the permutation (none when one batch
        # holds every row: the order within it changes nothing), then each batch's noise. A fixed
        # order draws the permutation too and leaves it unused, so that its noise is the shuffled
        # trial's: the two differ in their order alone.
        order = torch.randperm(n, generator=gens[k]) if n > bs else torch.arange(n)
        if not shuffled[k]:
            order = torch.arange(n)
        index[j, :n] = order + offsets[k]
        for start in range(0, n, bs):
            rows = min(bs, n - start)
            noise[j, start : start + rows] = torch.randn(rows, latent, generator=gens[k], dtype=dtype)
    index, noise = draw_on_cpu(index, device), draw_on_cpu(noise, device)
    for start in range(0, width, bs):
        x = x_store[index[:, start : start + bs]]
        terms = unit.terms(x, noise[:, start : start + bs])
        loss = unit.loss(terms["loss"], start)
        unit.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        unit.optimiser.step()
        unit.steps += 1
        if sums is None:
            continue
        with torch.no_grad():
            for j, k in enumerate(unit.members):
                if diverged[k] is None:
                    rows = max(0, min(bs, unit.counts[j] - start))
                    sums[k] += torch.stack([terms[t][j, :rows].detach().sum() for t in CURVE_TERMS]).double()


def train_anomaly(
    cfg: TrialConfig,
    split: AnomalySplit,
    ratio: float,
    report: ReportFn | None = None,
    checkpoint: Checkpoint | None = None,
    dtype: torch.dtype = torch.float32,
    where: DeviceLike = None,
) -> AnomalyOutcome:
    """Train one trial on ``split.fit`` with snapshots (a bundle of one); resume from ``checkpoint``
    when given. Raises TrialDiverged."""
    (member,) = train_anomaly_bundle([cfg], [split], [ratio], report, checkpoint, dtype, where)
    if member.outcome is None:
        raise TrialDiverged(member.diverged or "diverged")
    return member.outcome


# -- the trial --------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(timezone.utc)


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
    started = _now()
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
                    cfg, TrialStatus.DIVERGED, started, _now(), error=member.diverged, provenance=provenance or {}
                )
            )
            continue
        scalars, dims = anomaly_scalars(cfg, split, ratio, member.outcome, where)
        results.append(
            TrialResult(
                cfg,
                TrialStatus.OK,
                started,
                _now(),
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
