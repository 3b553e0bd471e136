import numpy as np
import pytest
import torch

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data.toy import ToyData
from isosweep.trainers.measure import dprime_fd, dprime_jvp, measure, pearson_on_raw
from isosweep.trainers.metrics import get_metric
from isosweep.trainers.models import build_model


def _mu(model, n=64):
    x = torch.as_tensor(ToyData("mix").sample(n, np.random.default_rng(3)), dtype=torch.float64)
    with torch.no_grad():
        return model.encode(x)[0]


@pytest.mark.parametrize("loss", ["se", "dconv", "uconv"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_finite_difference_dprime_agrees_with_the_jacobian_vector_product(loss, reduction):
    model = build_model(16, (128, 64), 3, "tanh", seed=0).double().eval()
    mu = _mu(model)
    metric = get_metric(loss)
    with torch.no_grad():
        fd = dprime_fd(model, mu, metric, reduction, 1e-3)
    exact = dprime_jvp(model, mu, metric, reduction)
    torch.testing.assert_close(fd, exact.detach(), rtol=1e-4, atol=0)


def test_a_one_sided_difference_would_not_pass_the_same_check():
    # The check above can fail: the one-sided difference of the paper has an O(eps) error.
    model = build_model(16, (128, 64), 3, "tanh", seed=0).double().eval()
    mu = _mu(model)
    se = get_metric("se")
    eps = 1e-3
    with torch.no_grad():
        x0 = model.decode(mu)
        step = torch.zeros_like(mu)
        step[:, 0] = eps
        one_sided = se(x0, model.decode(mu + step)) / eps**2
    exact = dprime_jvp(model, mu, se, "sum")[:, 0].detach()
    assert not torch.allclose(one_sided, exact, rtol=1e-4, atol=0)


def test_pearson_on_raw_values_is_scale_free_and_not_on_logs():
    rng = np.random.default_rng(0)
    log_a = rng.normal(size=500)
    assert pearson_on_raw(log_a, log_a + 7.0) == pytest.approx(1.0)
    assert pearson_on_raw(log_a, 2 * log_a) < 0.99  # exp(2 l) is not linear in exp(l)
    assert pearson_on_raw(log_a, np.zeros(500)) is None


def test_measure_returns_every_documented_quantity():
    cfg = TrialConfig(
        study="toy",
        budget="t",
        dataset="mix",
        loss="dconv",
        seed=0,
        latent_dim=3,
        lam=100,
        epochs=1,
        n_train=64,
        n_eval=300,
        points_cap=100,
    )
    toy = ToyData("mix")
    x = toy.sample(300, np.random.default_rng(0))
    model = build_model(16, (128, 64), 3, "tanh", seed=0)
    found = measure(model, cfg, x, toy.log_density(x), get_metric("dconv"))
    assert [d["dim"] for d in found.dims] == [0, 1, 2]
    assert sorted(d["rank"] for d in found.dims) == [1, 2, 3]
    by_rank = sorted(found.dims, key=lambda d: d["rank"])
    assert by_rank[0]["sigma_inv2_mean"] >= by_rank[1]["sigma_inv2_mean"] >= by_rank[2]["sigma_inv2_mean"]
    for key in ("recon", "kl", "coding_loss", "transform_loss", "n_active", "coding_theory"):
        assert key in found.scalars
    for est in ("prior", "elbo", "post", "elbo_metric", "post_metric"):
        assert f"corr_{est}" in found.scalars and f"rank_{est}" in found.scalars
        assert len(found.points[f"log_{est}"]) == 100
    # dconv's metric-aware estimates differ from the plain ones exactly by (n_active/2) log a(x).
    a = 2 / 3 + 2 * (x[:100] ** 2).sum(axis=1) / 21
    diff = found.points["log_elbo_metric"] - found.points["log_elbo"]
    np.testing.assert_allclose(diff, 0.5 * found.scalars["n_active"] * np.log(a))
