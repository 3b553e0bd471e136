"""The anomaly trial's recorded settings (``TrialConfig``: split, scaling, snapshot_rule, score,
output_activation, batch_order; docs/method.md 5.3): each is part of the key only when it differs from its default,
each does what its docstring says, and the rules that do not change training pick exactly the
snapshot that the curves of a default trial point to."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from isosweep.studies import STUDIES
from isosweep.trainers.anomaly import detect, split_rows, train_anomaly_bundle
from isosweep.trainers.config import ANOMALY_CHOICES, TrialConfig
from isosweep.trainers.data.anomaly import LabelledData, minmax
from isosweep.trainers.measure import anomaly_score, kl_per_dim, score_lx
from isosweep.trainers.metrics import get_metric
from isosweep.trainers.models import build_model
from isosweep.trainers.objective import objective_terms
from isosweep.trainers.stacked import StackedVAE
from isosweep.trainers.training import loop_seed

RATIO = 0.1


def _base(**changes) -> TrialConfig:
    (cfg,) = STUDIES["anomaly-paper"].configs("smoke", where={"dataset": ("thyroid",)})
    return replace(cfg, **changes)


def _raw_data(n: int = 400, shift: float = 30.0) -> LabelledData:
    """Unscaled columns of very different ranges, 10 % anomalies moved off the normal rows by
    noise of SD ``shift``."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, 2)) @ rng.normal(size=(2, 5)) * np.array([1.0, 10.0, 100.0, 0.1, 5.0]) + 50.0
    anomaly = np.zeros(n, bool)
    anomaly[rng.choice(n, n // 10, replace=False)] = True
    x[anomaly] += rng.normal(0.0, shift, size=(n // 10, 5))
    return LabelledData("thyroid", x.astype(np.float32), anomaly, RATIO)


def test_naming_a_default_keeps_the_default_key_and_bad_values_are_refused():
    # The studies plan the best validation F1; a config that names no rule keeps the lowest
    # validation loss, under the key such trials always had.
    assert _base().snapshot_rule == "val_f1"
    base = _base(snapshot_rule=None)
    for name, choices in ANOMALY_CHOICES.items():
        assert getattr(base, name) is None
        assert replace(base, **{name: choices[0]}).key == base.key
        assert replace(base, **{name: choices[0]}).to_dict()[name] is None
        for other in choices[1:]:
            if name == "split":
                continue
            assert replace(base, **{name: other}).key != base.key
        with pytest.raises(ValueError, match=name):
            replace(base, **{name: "no-such-value"})
    with pytest.raises(ValueError, match="snapshot_rule to 'last'"):
        replace(base, split="paper")
    assert replace(base, split="paper", snapshot_rule="last").key != replace(base, snapshot_rule="last").key
    # Only the output activation changes the network, so only it parts bundles.
    fused = {
        replace(base, **{name: choices[-1]}).fusion_key()
        for name, choices in ANOMALY_CHOICES.items()
        if name != "split"
    }
    assert fused == {base.fusion_key(), replace(base, output_activation="leaky_relu").fusion_key()}


def test_the_paper_split_trains_every_normal_row_of_the_same_halves():
    raw = _raw_data()
    data = LabelledData("t", minmax(raw.x), raw.anomaly, RATIO)
    ours, paper = split_rows(data, 5, 0.1), split_rows(data, 5, 0.1, protocol="paper")
    assert np.array_equal(ours.test, paper.test) and np.array_equal(ours.test_anomaly, paper.test_anomaly)
    assert np.array_equal(ours.val_anomaly, paper.val_anomaly)
    assert paper.val_normal.shape == (0, 5) and len(ours.val_normal) > 0
    assert np.array_equal(np.sort(np.concatenate([ours.val_normal, ours.fit]), axis=0), np.sort(paper.fit, axis=0))


def test_train_half_scaling_uses_the_training_half_alone():
    raw = _raw_data()
    whole = split_rows(LabelledData("t", minmax(raw.x), raw.anomaly, RATIO), 2, 0.1)
    half = split_rows(raw, 2, 0.1, scaling="train_half")
    train = np.concatenate([half.fit, half.val_normal, half.val_anomaly])
    np.testing.assert_allclose(train.min(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(train.max(axis=0), 1.0, atol=1e-6)
    # The test half is scaled by the training half's range: it may leave [0, 1]; all rows scaled
    # over the whole data set never do.
    assert whole.test.min() >= 0.0 and whole.test.max() <= 1.0
    assert half.test.min() < 0.0 or half.test.max() > 1.0
    # The same rows, column by column an exact affine image of the default's.
    assert np.array_equal(half.test_anomaly, whole.test_anomaly)
    for j in range(raw.x.shape[1]):
        slope, intercept = np.polyfit(whole.test[:, j], half.test[:, j], 1)
        np.testing.assert_allclose(slope * whole.test[:, j] + intercept, half.test[:, j], atol=1e-5)


def test_the_recon_score_is_lx_less_its_kl_term():
    torch.manual_seed(0)
    model = build_model(5, (8, 4), 3, "leaky_relu", seed=1).double().eval()
    x = torch.rand(50, 5, dtype=torch.float64)
    cfg, metric = _base(), get_metric("se")
    with torch.no_grad():
        mu, logvar = model.encode(x)
        kl = kl_per_dim(mu, logvar).sum(dim=1)
        recon = anomaly_score(model, x, replace(cfg, score="recon"), metric)
        torch.testing.assert_close(recon + kl, score_lx(model, x, cfg, metric))
        torch.testing.assert_close(anomaly_score(model, x, cfg, metric), score_lx(model, x, cfg, metric))
        assert (kl > 0).all()


@pytest.mark.parametrize("name", ["sigmoid", "leaky_relu"])
def test_a_stacked_output_activation_computes_each_members_model(name):
    models = [build_model(6, (8, 4), 3, "leaky_relu", seed, name).double() for seed in (0, 1)]
    linear = build_model(6, (8, 4), 3, "leaky_relu", 0).double()
    # No parameters of its own: the initial weights, and so the checkpoints' names, are a linear output's.
    assert all(torch.equal(p, q) for p, q in zip(models[0].state_dict().values(), linear.state_dict().values()))
    z = torch.randn(2, 10, 3, dtype=torch.float64)
    out = models[0].decode(z[0])
    if name == "sigmoid":
        assert out.min() > 0 and out.max() < 1
    assert not torch.allclose(out, linear.decode(z[0]))
    for feature_major in (False, True):
        stacked = StackedVAE.from_models(models, "leaky_relu", torch.float64, feature_major=feature_major)
        decoded = stacked.decode(z)
        pair = stacked.decode_pair(z, 2 * z)
        for k, model in enumerate(models):
            torch.testing.assert_close(decoded[k], model.decode(z[k]))
            torch.testing.assert_close(pair[1][k], model.decode(2 * z[k]))


def test_snapshot_rules_choose_from_the_same_training_what_the_curves_show():
    """Members that differ only in the snapshot rule train alike (one bundle, same curves), and each
    keeps the snapshot its rule names, as the @anomaly_selection query reads it off the curves."""
    torch.set_num_threads(1)
    raw = _raw_data(shift=8.0)  # anomalies close enough that validation F1 moves from snapshot to snapshot
    data = LabelledData("t", minmax(raw.x), raw.anomaly, RATIO)
    base = _base(epochs=40, batch_size=64, lr=3e-2)
    split = split_rows(data, base.seed, base.val_fraction)
    rules = [None, "val_f1", "last"]
    cfgs = [replace(base, snapshot_rule=rule) for rule in rules]
    members = train_anomaly_bundle(cfgs, [split] * 3, [RATIO] * 3, dtype=torch.float64)
    curves = [m.outcome.curves for m in members]
    for other in curves[1:]:
        assert [c["epoch"] for c in other] == [c["epoch"] for c in curves[0]]
        for key in ("f1", "val_f1", "val_loss", "loss"):
            assert [c[key] for c in other] == pytest.approx([c[key] for c in curves[0]], rel=1e-9)
    rows = curves[0]
    expected = {
        None: min(rows, key=lambda c: (c["val_loss"], c["epoch"]))["epoch"],
        "val_f1": min(rows, key=lambda c: (-c["val_f1"], c["val_loss"], c["epoch"]))["epoch"],
        "last": rows[-1]["epoch"],
    }
    assert len(set(expected.values())) == 3, f"the rules should disagree on this run: {expected}"
    for rule, member in zip(rules, members):
        best = member.outcome.best
        assert best.epoch == expected[rule], rule
        chosen = next(c for c in rows if c["epoch"] == best.epoch)
        assert detect(best.scores, split.test_anomaly, RATIO)[2] == pytest.approx(chosen["f1"])


def test_a_paper_split_member_keeps_its_last_snapshot_without_validation_rows():
    torch.set_num_threads(1)
    raw = _raw_data()
    data = LabelledData("t", minmax(raw.x), raw.anomaly, RATIO)
    cfg = _base(epochs=6, batch_size=64, split="paper", snapshot_rule="last")
    split = split_rows(data, cfg.seed, cfg.val_fraction, protocol="paper")
    (member,) = train_anomaly_bundle([cfg], [split], [RATIO], dtype=torch.float64)
    assert member.outcome is not None, member.diverged
    assert member.outcome.best.epoch == 6 and member.outcome.best.val_loss is None
    assert all(c["val_loss"] is None and c["val_f1"] is None for c in member.outcome.curves)


def test_a_fixed_batch_order_walks_the_split_in_order_with_the_shuffled_noise():
    """``batch_order=fixed`` trains batch by batch on the split's rows in their order, every epoch,
    with the noise a shuffled trial of the seed draws; it bundles with shuffled members."""
    torch.set_num_threads(1)
    raw = _raw_data()
    data = LabelledData("t", minmax(raw.x), raw.anomaly, RATIO)
    fixed = _base(epochs=3, batch_size=64, lr=1e-2, snapshot_rule="last", batch_order="fixed")
    shuffled = replace(fixed, batch_order=None)
    assert fixed.key != shuffled.key and fixed.fusion_key() == shuffled.fusion_key()
    split = split_rows(data, fixed.seed, fixed.val_fraction)
    got_fixed, got_shuffled = train_anomaly_bundle([fixed, shuffled], [split, split], [RATIO] * 2, dtype=torch.float64)

    # The same training written out: the split's rows in order, the permutation drawn and unused.
    x = torch.as_tensor(split.fit, dtype=torch.float64)
    n, bs = x.shape[0], fixed.batch_size
    assert n > 2 * bs
    model = build_model(
        x.shape[1], fixed.hidden, fixed.latent_dim, fixed.activation, fixed.seed, fixed.output_activation
    ).double()
    optimiser = torch.optim.Adam(model.parameters(), lr=fixed.lr)
    gen = torch.Generator().manual_seed(loop_seed(fixed.seed))
    metric = get_metric(fixed.loss)
    for _ in range(fixed.epochs):
        torch.randperm(n, generator=gen)
        noise = [
            torch.randn(min(bs, n - s), fixed.latent_dim, generator=gen, dtype=torch.float64) for s in range(0, n, bs)
        ]
        for eps, s in zip(noise, range(0, n, bs)):
            loss = objective_terms(
                model, x[s : s + bs], eps, fixed, metric, get_metric(fixed.transform_metric or fixed.loss)
            )["loss"].mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(got_fixed.outcome.model.state_dict()[name], value, rtol=1e-9, atol=1e-12)
    assert any(
        not torch.allclose(got_shuffled.outcome.model.state_dict()[name], value, rtol=1e-4)
        for name, value in model.state_dict().items()
    )
