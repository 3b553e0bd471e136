"""Fused training changes the speed, never the result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data import TrialData, make_data
from isosweep.trainers.fused import train_bundle
from isosweep.trainers.measure import measure
from isosweep.trainers.metrics import get_metric

SMALL = {"study": "toy", "budget": "test", "latent_dim": 3, "epochs": 15, "n_train": 2048, "n_eval": 500}
MEMBERS = [
    TrialConfig(dataset="norm", loss="se", lam=10, seed=0, **SMALL),
    TrialConfig(dataset="mix", loss="dconv", lam=100, seed=1, **SMALL),
    TrialConfig(dataset="ramp", loss="uconv", lam=1000, seed=2, **SMALL),
    TrialConfig(dataset="mix", loss="se", lam=100, seed=3, reduction="mean", **SMALL),
]


def _close(a: float, b: float, rel: float = 1e-6) -> bool:
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b))


def test_fused_members_equal_one_by_one_training_in_float64():
    datas = [make_data(c) for c in MEMBERS]
    fused = train_bundle(MEMBERS, datas, dtype=torch.float64)
    assert fused[0].steps == 15 * 16  # a few hundred steps
    for cfg, data, member in zip(MEMBERS, datas, fused):
        (alone,) = train_bundle([cfg], [data], dtype=torch.float64)
        for (name, p_fused), p_alone in zip(member.model.state_dict().items(), alone.model.state_dict().values()):
            torch.testing.assert_close(p_fused, p_alone, rtol=1e-6, atol=1e-9, msg=f"{cfg.dataset}/{cfg.loss}: {name}")
        assert [c["loss"] for c in member.curves] == pytest.approx([c["loss"] for c in alone.curves], rel=1e-6)
        m_fused = measure(member.model, cfg, data.eval, data.eval_log_p, get_metric(cfg.loss))
        m_alone = measure(alone.model, cfg, data.eval, data.eval_log_p, get_metric(cfg.loss))
        for key, value in m_alone.scalars.items():
            if isinstance(value, float):
                assert _close(m_fused.scalars[key], value), key
        for d_fused, d_alone in zip(m_fused.dims, m_alone.dims):
            for key in ("norm_mean", "dprime_mean", "sigma_inv2_mean", "kl_mean"):
                assert _close(d_fused[key], d_alone[key]), key


def test_a_diverging_member_is_frozen_and_the_others_go_on():
    datas = [make_data(c) for c in MEMBERS[:3]]
    poisoned = TrialData(datas[1].train.copy(), datas[1].eval, datas[1].eval_log_p)
    poisoned.train[5, 0] = np.nan
    fused = train_bundle(MEMBERS[:3], [datas[0], poisoned, datas[2]], dtype=torch.float64)
    assert fused[1].model is None and "epoch 1" in fused[1].diverged and len(fused[1].curves) == 1
    for k in (0, 2):
        (alone,) = train_bundle([MEMBERS[k]], [datas[k]], dtype=torch.float64)
        assert fused[k].diverged is None
        for p_fused, p_alone in zip(fused[k].model.parameters(), alone.model.parameters()):
            torch.testing.assert_close(p_fused, p_alone, rtol=1e-6, atol=1e-9)


def test_a_bundle_resumed_from_its_checkpoint_ends_where_an_uninterrupted_one_does():
    datas = [make_data(c) for c in MEMBERS]
    saved = {}

    def report(metrics, make_checkpoint):
        if metrics["epoch"] == 6:
            saved["checkpoint"] = make_checkpoint()

    whole = train_bundle(MEMBERS, datas, report=report)
    resumed = train_bundle(MEMBERS, datas, checkpoint=saved["checkpoint"])
    for a, b in zip(whole, resumed):
        assert a.curves == b.curves and a.steps == b.steps
        for p, q in zip(a.model.parameters(), b.model.parameters()):
            assert torch.equal(p, q)


def test_incompatible_members_are_refused():
    other = TrialConfig(dataset="mix", loss="se", lam=1, seed=0, **{**SMALL, "epochs": 3})
    with pytest.raises(ValueError, match="share architecture"):
        train_bundle([MEMBERS[0], other], [make_data(MEMBERS[0]), make_data(other)])


def test_decomposed_members_with_a_transform_loss_fuse_exactly():
    decomposed = {**SMALL, "epochs": 4, "form": "decomposed", "transform_metric": "l2"}
    members = [
        TrialConfig(dataset="mix", loss="se", lam1=50, lam2=100, seed=0, **decomposed),
        TrialConfig(dataset="norm", loss="dconv", lam1=200, lam2=400, seed=1, **decomposed),
    ]
    datas = [make_data(c) for c in members]
    fused = train_bundle(members, datas, dtype=torch.float64)
    for cfg, data, member in zip(members, datas, fused):
        (alone,) = train_bundle([cfg], [data], dtype=torch.float64)
        assert member.diverged is None and np.isfinite(member.curves[-1]["loss"])
        for p_fused, p_alone in zip(member.model.state_dict().values(), alone.model.state_dict().values()):
            torch.testing.assert_close(p_fused, p_alone, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("activation", ["leaky_relu", "relu", "tanh"])
def test_the_feature_major_chain_has_the_gradients_of_its_layers(activation):
    from isosweep.trainers.stacked import _FeatureMajorChain

    torch.manual_seed(0)
    params = [
        torch.randn(*shape, dtype=torch.float64, requires_grad=True)
        for shape in [(2, 4, 5), (2, 4, 1), (2, 3, 4), (2, 3, 1), (2, 2, 3), (2, 2, 1)]
    ]
    h = torch.randn(2, 5, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, *p: _FeatureMajorChain.apply(x, activation, *p), (h, *params))


def test_the_feature_major_layout_computes_the_batch_major_model_and_its_gradients():
    from isosweep.trainers.models import build_model
    from isosweep.trainers.stacked import StackedVAE

    models = [build_model(6, (8, 4), 3, "leaky_relu", seed) for seed in (0, 1)]
    batch = StackedVAE.from_models(models, "leaky_relu", torch.float64)
    feature = StackedVAE.from_models(models, "leaky_relu", torch.float64, feature_major=True)
    x = torch.randn(2, 10, 6, dtype=torch.float64)
    for a, b in zip(batch.encode(x), feature.encode(x)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(batch.decode(x[..., :3]), feature.decode(x[..., :3]))
    # Both decoder passes in one: the same outputs, and the same gradients as two passes.
    mu, z = x[..., :3], x[..., 3:]
    pair = feature.decode_pair(mu, z)
    for a, b in zip(pair, (batch.decode(mu), batch.decode(z))):
        torch.testing.assert_close(a, b)
    (pair[0].square().sum() + pair[1].sum()).backward()
    (batch.decode(mu).square().sum() + batch.decode(z).sum()).backward()
    decoder = slice(feature.n_body + 1, None)
    for w_feature, w_batch in zip(feature.weights[decoder], batch.weights[decoder]):
        torch.testing.assert_close(w_feature.grad, w_batch.grad.transpose(1, 2))
    for b_feature, b_batch in zip(feature.biases[decoder], batch.biases[decoder]):
        torch.testing.assert_close(b_feature.grad, b_batch.grad.transpose(1, 2))
    for k, template in enumerate(models):
        for p, q in zip(feature.member(k, template).parameters(), template.double().parameters()):
            assert torch.equal(p, q)


def test_capture_is_a_switch_that_changes_no_result():
    """``capture`` asks for CUDA graphs; where the device cannot capture (here the CPU) the epoch
    runs eagerly, with exactly the results of the default."""
    datas = [make_data(c) for c in MEMBERS[:2]]
    plain = train_bundle(MEMBERS[:2], datas)
    switched = train_bundle(MEMBERS[:2], datas, capture=True)
    for a, b in zip(plain, switched):
        assert a.curves == b.curves
        assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
