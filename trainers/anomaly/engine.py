"""The training of an anomaly bundle (``train_anomaly_bundle``), step by step: its rows placed on
the device once (``Bundle``), its members cut into units that step together
(``isosweep.trainers.anomaly.unit``), then epoch by epoch each unit's training and, at every
snapshot epoch, every live member's snapshot (``_take_snapshots``) and a progress report with its
checkpoint; last, each member's kept snapshot loaded into its model (``_outcomes``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from isosweep.trainers.anomaly.protocol import (
    DEFAULT_SNAPSHOTS,
    AnomalySplit,
    detect,
    keeps,
    model_scores,
    snapshot_epochs,
    validation_f1,
)
from isosweep.trainers.anomaly.records import AnomalyOutcome, MemberOutcome, Snapshot
from isosweep.trainers.anomaly.unit import FitRows, Unit, default_unit_members, unit_groups
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.device import DeviceLike, resolve, to_cpu
from isosweep.trainers.fused import check_bundle
from isosweep.trainers.metrics import Metric, get_metric
from isosweep.trainers.objective import objective_terms
from isosweep.trainers.training import CURVE_TERMS, Checkpoint, ReportFn, TrialDiverged, loop_seed, step_learning_rate

VAL_NOISE_STREAM = 6

Tensor = torch.Tensor


def _val_noise(cfg: TrialConfig, rows: int, dtype: torch.dtype) -> Tensor:
    """The fixed noise of the validation loss (seeded, drawn on the CPU), so that the snapshot
    choice is repeatable."""
    val_gen = torch.Generator().manual_seed(
        int(np.random.SeedSequence([cfg.seed, VAL_NOISE_STREAM]).generate_state(1)[0])
    )
    return torch.randn(rows, cfg.latent_dim, generator=val_gen, dtype=dtype)


@dataclass(frozen=True)
class Bundle:
    """What the members of a bundle train and are evaluated on, each list indexed by member; the
    rows are placed on the device once."""

    cfgs: Sequence[TrialConfig]
    splits: Sequence[AnomalySplit]
    ratios: Sequence[float]
    metrics: list[Metric]
    transforms: list[Metric]
    counts: list[int]
    """Training rows per member."""
    shuffled: list[bool]
    """Whether a member walks its rows in a new permutation each epoch (``TrialConfig.batch_order``)."""
    fit: FitRows
    val: list[Tensor]
    val_anomaly: list[Tensor]
    test: list[Tensor]
    val_eps: list[Tensor]
    """Each member's fixed validation noise (``_val_noise``)."""

    @classmethod
    def place(
        cls,
        cfgs: Sequence[TrialConfig],
        splits: Sequence[AnomalySplit],
        ratios: Sequence[float],
        dtype: torch.dtype,
        device: torch.device,
    ) -> Bundle:
        metrics = [get_metric(c.loss) for c in cfgs]
        transforms = [get_metric(c.transform_metric or c.loss) for c in cfgs]
        fit = FitRows.place(splits, dtype, device)
        counts = [int(s.fit.shape[0]) for s in splits]
        # Each split's evaluation rows once on the device, shared by the members that use the split
        # (KDDCup's test half alone is 120 MB).
        on_device: dict[int, tuple[Tensor, Tensor, Tensor]] = {}
        for split in splits:
            if id(split) not in on_device:
                val, val_anomaly, test = (
                    torch.as_tensor(rows, dtype=dtype).to(device)
                    for rows in (split.val_normal, split.val_anomaly, split.test)
                )
                on_device[id(split)] = (val, val_anomaly, test)
        x_val, x_val_anomaly, x_test = ([on_device[id(s)][i] for s in splits] for i in range(3))
        val_eps = [_val_noise(c, s.val_normal.shape[0], dtype).to(device) for c, s in zip(cfgs, splits)]
        shuffled = [c.batch_order is None for c in cfgs]
        return cls(
            cfgs, splits, ratios, metrics, transforms, counts, shuffled, fit, x_val, x_val_anomaly, x_test, val_eps
        )

    @property
    def input_dim(self) -> int:
        return int(self.splits[0].fit.shape[1])


@dataclass
class BundleState:
    """What each member carries from epoch to epoch, and a checkpoint keeps: its generator (batch
    order and noise), its curve, the snapshot it keeps, and why it diverged (None while it trains)."""

    gens: list[torch.Generator]
    curves: list[list[dict[str, Any]]]
    best: list[Snapshot | None]
    diverged: list[str | None]

    @classmethod
    def start(cls, cfgs: Sequence[TrialConfig]) -> BundleState:
        gens = [torch.Generator().manual_seed(loop_seed(c.seed)) for c in cfgs]
        return cls(gens, [[] for _ in cfgs], [None] * len(cfgs), [None] * len(cfgs))

    def resume(self, checkpoint: Checkpoint, units: Sequence[Unit]) -> int:
        """Load ``checkpoint`` into the members and ``units``; returns the epochs it had finished."""
        for unit, saved in zip(units, checkpoint["units"]):
            unit.load(saved)
        for g, state in zip(self.gens, checkpoint["generators"]):
            g.set_state(state)
        self.curves = [list(c) for c in checkpoint["curves"]]
        self.best, self.diverged = list(checkpoint["best"]), list(checkpoint["diverged"])
        return int(checkpoint["epoch"])

    def checkpoint(self, done_epoch: int, units: Sequence[Unit]) -> Checkpoint:
        return {
            "epoch": done_epoch,
            "units": [u.state() for u in units],
            "generators": [g.get_state() for g in self.gens],
            "curves": [list(c) for c in self.curves],
            "best": to_cpu(self.best),
            "diverged": list(self.diverged),
        }


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

    Each member keeps everything of a trial trained alone (docs/method.md 5.3): its split, its random
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
    bundle = Bundle.place(cfgs, splits, ratios, dtype, device)
    cap = default_unit_members(device) if unit_members == -1 else unit_members
    units = [
        Unit(members, cfgs, [bundle.counts[k] for k in members], bundle.input_dim, dtype, device)
        for members in unit_groups(bundle.counts, ref.batch_size, cap)
    ]
    state = BundleState.start(cfgs)
    start_epoch = state.resume(checkpoint, units) if checkpoint is not None else 0

    snaps = snapshot_epochs(ref.epochs, ref.snapshots or DEFAULT_SNAPSHOTS)
    sums = [torch.zeros(len(CURVE_TERMS), dtype=torch.float64, device=device) for _ in cfgs]
    for epoch in range(start_epoch, ref.epochs):
        lr = step_learning_rate(ref, epoch, ref.epochs)
        last = (epoch + 1) in snaps
        for unit in units:
            unit.train_epoch(lr, bundle.fit, state.gens, state.diverged, bundle.shuffled, sums if last else None)
        if not last:
            continue
        rows = _take_snapshots(units, bundle, state, sums, epoch + 1)
        if all(d is not None for d in state.diverged):
            break
        if report is not None:
            _report(report, epoch + 1, units, bundle, state, rows)
    return _outcomes(units, state)


def _take_snapshots(
    units: Sequence[Unit], bundle: Bundle, state: BundleState, sums: list[Tensor], done_epoch: int
) -> list[dict[str, Any]]:
    """A snapshot of every live member after ``done_epoch`` epochs: its curve row (the mean of the
    terms summed in ``sums`` since the last snapshot, validation loss, validation F1, test F1), and
    the snapshot its ``snapshot_rule`` keeps. A member whose loss or validation loss is not finite
    is frozen and recorded as diverged. Returns the curve rows taken."""
    rows: list[dict[str, Any]] = []
    for unit in units:
        for j, k in enumerate(unit.members):
            if state.diverged[k] is not None:
                continue
            cfg, model, metric = bundle.cfgs[k], unit.member(j), bundle.metrics[k]
            model.eval()
            val_loss: float | None = None
            if bundle.val[k].shape[0]:
                with torch.no_grad():
                    val_loss = float(
                        objective_terms(model, bundle.val[k], bundle.val_eps[k], cfg, metric, bundle.transforms[k])[
                            "loss"
                        ].mean()
                    )
            means = (sums[k] / bundle.counts[k]).tolist()
            sums[k].zero_()
            if not all(math.isfinite(v) for v in [*means, *([] if val_loss is None else [val_loss])]):
                state.diverged[k] = f"loss became {means[0]} (validation {val_loss}) by epoch {done_epoch}"
                unit.freeze(j)
                continue
            test_scores = model_scores(model, bundle.test[k], cfg, metric)
            val_f1 = validation_f1(
                model_scores(model, bundle.val[k], cfg, metric),
                model_scores(model, bundle.val_anomaly[k], cfg, metric),
                bundle.ratios[k],
            )
            _, _, f1 = detect(test_scores, bundle.splits[k].test_anomaly, bundle.ratios[k])
            row = {
                "step": unit.steps,
                "epoch": done_epoch,
                **dict(zip(CURVE_TERMS, means)),
                "val_loss": val_loss,
                "val_f1": val_f1,
                "f1": f1,
            }
            state.curves[k].append(row)
            rows.append(row)
            if keeps(cfg.snapshot_rule, state.best[k], val_loss, val_f1):
                state.best[k] = Snapshot(done_epoch, val_loss, to_cpu(model.state_dict()), test_scores, val_f1)
    return rows


def _report(
    report: ReportFn,
    done_epoch: int,
    units: Sequence[Unit],
    bundle: Bundle,
    state: BundleState,
    rows: list[dict[str, Any]],
) -> None:
    """Report progress after a snapshot epoch, with the checkpoint of the whole bundle."""

    def make_checkpoint(done_epoch: int = done_epoch) -> Checkpoint:
        return state.checkpoint(done_epoch, units)

    # samples: member-samples trained so far (each member passes over its fit rows each epoch).
    report({"progress": done_epoch, "samples": done_epoch * sum(bundle.counts), **_mean_row(rows)}, make_checkpoint)


def _mean_row(rows: list[dict[str, Any]]) -> dict[str, float]:
    """A progress report's metrics: each snapshot value's mean over the members that have one
    (a bundle of one reports its own row)."""
    names = [name for name in rows[0] if all(r.get(name) is not None for r in rows)] if rows else []
    return {name: float(np.mean([r[name] for r in rows])) if len(rows) > 1 else rows[0][name] for name in names}


def _outcomes(units: Sequence[Unit], state: BundleState) -> list[MemberOutcome]:
    """Each member's outcome, in member order: its model with the kept snapshot loaded, or why it
    has none."""
    outcomes = []
    for unit in units:
        for j, k in enumerate(unit.members):
            kept = state.best[k]
            if state.diverged[k] is not None or kept is None:
                outcomes.append((k, MemberOutcome(None, state.diverged[k] or "no snapshot was taken")))
                continue
            model = unit.member(j)
            model.load_state_dict(kept.state)
            model.eval()
            outcomes.append((k, MemberOutcome(AnomalyOutcome(model, kept, state.curves[k], unit.steps))))
    return [o for _, o in sorted(outcomes, key=lambda pair: pair[0])]


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
