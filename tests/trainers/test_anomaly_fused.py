"""Fused anomaly training changes the speed, never the result: every member of a bundle equals the
same trial trained alone (float64, parameters within rtol 1e-6, the same snapshot and F1), with
splits of different sizes (masked, and in units of their own batch count) and a diverging member."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from anomaly_files import write_anomaly_files

from isosweep.studies import STUDIES
from isosweep.trainers.anomaly import AnomalySplit, batches_per_epoch, split_rows, train_anomaly, train_anomaly_bundle
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data.anomaly import LabelledData
from isosweep.trainers.kinds import fusable
from isosweep.trainers.records import TrialStatus
from isosweep.trainers.run import run_bundle, run_trial
from isosweep.trainers.training import TrialDiverged

RATIO = 0.05
BATCH = 64
# (seed, lambda1, lambda2, training rows kept): rows 250 and 240 step 4 batches of 64 per epoch (one
# masked unit), 180 and 170 step 3 (a unit of their own); seed 3's rows hold a NaN.
MEMBERS = [
    (0, 6000.0, 18000.0, 250),
    (1, 12000.0, 6000.0, 240),
    (2, 30000.0, 24000.0, 180),
    (0, 24000.0, 12000.0, 250),
    (3, 6000.0, 6000.0, 250),
    (4, 18000.0, 30000.0, 170),
]
DIVERGING = 4
FIXED_ORDER = 3


def _base() -> TrialConfig:
    (cfg,) = STUDIES["anomaly-paper"].configs("smoke", where={"dataset": ("thyroid",)})
    # lr 1e-3 so that a dozen epochs move the parameters well away from their initialisation.
    return replace(cfg, epochs=12, batch_size=BATCH, lr=1e-3)


def _data() -> LabelledData:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(600, 3)) @ rng.normal(size=(3, 6)) + 0.05 * rng.normal(size=(600, 6))
    anomaly = np.zeros(600, bool)
    anomaly[rng.choice(600, 30, replace=False)] = True
    x[anomaly] += rng.normal(0.0, 2.0, size=(30, 6))
    x = (x - x.min(0)) / (x.max(0) - x.min(0))
    return LabelledData("thyroid", x.astype(np.float32), anomaly, RATIO)


def _bundle() -> tuple[list[TrialConfig], list[AnomalySplit]]:
    base, data = _base(), _data()
    cfgs, splits, by_seed = [], [], {}
    for seed, lam1, lam2, rows in MEMBERS:
        # Member 3 walks its rows in the split's order (``batch_order``), in a unit of shuffled ones.
        order = "fixed" if len(cfgs) == FIXED_ORDER else None
        cfgs.append(replace(base, seed=seed, lam1=lam1, lam2=lam2, batch_order=order))
        if seed not in by_seed:
            split = split_rows(data, seed, base.val_fraction)
            fit = split.fit[:rows].copy()
            if seed == MEMBERS[DIVERGING][0]:
                fit[3, 2] = np.nan
            by_seed[seed] = replace(split, fit=fit)
        splits.append(by_seed[seed])
    return cfgs, splits


def test_the_bundle_covers_masking_units_and_divergence():
    cfgs, splits = _bundle()
    assert fusable(cfgs)
    counts = [s.fit.shape[0] for s in splits]
    assert len(set(counts)) > 2 and {batches_per_epoch(n, BATCH) for n in counts} == {3, 4}
    assert splits[0] is splits[3]  # grid points of one seed share a split


@pytest.mark.parametrize("unit_members", [None, 2])
def test_fused_members_equal_one_by_one_training_in_float64(unit_members):
    """None: one masked unit per batch count; 2: units of two members, some masked, some not."""
    torch.set_num_threads(1)
    cfgs, splits = _bundle()
    fused = train_anomaly_bundle(cfgs, splits, [RATIO] * len(cfgs), dtype=torch.float64, unit_members=unit_members)
    for k, (cfg, split, member) in enumerate(zip(cfgs, splits, fused)):
        if k == DIVERGING:
            with pytest.raises(TrialDiverged) as alone_error:
                train_anomaly(cfg, split, RATIO, dtype=torch.float64)
            assert member.outcome is None and member.diverged == str(alone_error.value)
            assert "by epoch 1" in member.diverged
            continue
        alone = train_anomaly(cfg, split, RATIO, dtype=torch.float64)
        got = member.outcome
        assert got is not None, member.diverged
        assert got.best.epoch == alone.best.epoch and got.steps == alone.steps
        assert got.best.val_loss == pytest.approx(alone.best.val_loss, rel=1e-6)
        for (name, p_fused), p_alone in zip(got.model.state_dict().items(), alone.model.state_dict().values()):
            torch.testing.assert_close(p_fused, p_alone, rtol=1e-6, atol=1e-9, msg=f"member {k}: {name}")
        initial = dict(zip(got.model.state_dict(), _initial(cfg, split).values()))
        assert any(not torch.allclose(p, initial[n], rtol=1e-2) for n, p in got.model.state_dict().items())
        assert [c["epoch"] for c in got.curves] == [c["epoch"] for c in alone.curves]
        assert [c["f1"] for c in got.curves] == [c["f1"] for c in alone.curves]
        assert [c["val_f1"] for c in got.curves] == [c["val_f1"] for c in alone.curves]
        for key in ("loss", "recon", "kl", "val_loss"):
            assert [c[key] for c in got.curves] == pytest.approx([c[key] for c in alone.curves], rel=1e-6)
        np.testing.assert_allclose(got.best.scores, alone.best.scores, rtol=1e-6)


def _initial(cfg: TrialConfig, split: AnomalySplit) -> dict[str, torch.Tensor]:
    from isosweep.trainers.models import build_model

    return build_model(split.fit.shape[1], cfg.hidden, cfg.latent_dim, cfg.activation, cfg.seed).double().state_dict()


def test_a_bundle_resumed_from_its_checkpoint_ends_where_an_uninterrupted_one_does():
    torch.set_num_threads(1)
    cfgs, splits = _bundle()
    saved = {}

    def report(metrics, make_checkpoint):
        if metrics["progress"] == 6:
            saved["checkpoint"] = make_checkpoint()

    whole = train_anomaly_bundle(cfgs, splits, [RATIO] * len(cfgs), report)
    resumed = train_anomaly_bundle(cfgs, splits, [RATIO] * len(cfgs), None, saved["checkpoint"])
    for a, b in zip(whole, resumed):
        assert a.diverged == b.diverged
        if a.outcome is None:
            continue
        assert a.outcome.curves == b.outcome.curves and a.outcome.best.epoch == b.outcome.best.epoch
        for p, q in zip(a.outcome.model.state_dict().values(), b.outcome.model.state_dict().values()):
            assert torch.equal(p, q)


def test_a_grid_of_one_data_set_runs_as_one_bundle(tmp_path):
    root = str(write_anomaly_files(tmp_path))
    cfgs = STUDIES["anomaly"].configs("smoke", seeds=2, where={"dataset": ("thyroid",)})
    assert len(cfgs) == 8 and fusable(cfgs)
    assert not fusable(cfgs + STUDIES["anomaly"].configs("smoke", where={"dataset": ("arrhythmia",)}))
    results = run_bundle(cfgs, None, None, root)
    assert [r.config.key for r in results] == [c.key for c in cfgs]
    assert all(r.status is TrialStatus.OK for r in results)
    assert all(r.provenance["device"] == "cpu" for r in results)
    alone = run_trial(cfgs[5], None, None, root)
    assert alone.scalars["snapshot_epoch"] == results[5].scalars["snapshot_epoch"]
    assert alone.scalars["n_fit"] == results[5].scalars["n_fit"]
    assert alone.scalars["loss_final"] == pytest.approx(results[5].scalars["loss_final"], rel=1e-4)
