"""The 1-D linear VAE of the paper's appendix A.3, trained by the project's own loop.

Data x ~ N(0, s2), encoder mu = a x, decoder x_hat = b z, loss lam * (x - x_hat)^2 + KL. Setting
the gradients of the expected loss to zero gives sigma^2 = beta / (2 s2) (beta = 1/lam),
b^2 sigma^2 = (beta/2)(1 - sigma^2) for the coding loss, and the norm (2/beta) sigma^2 D' = 1 - sigma^2.
"""

import numpy as np
import pytest
import torch

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data import TrialData
from isosweep.trainers.fused import train_model
from isosweep.trainers.measure import measure
from isosweep.trainers.metrics import get_metric


@pytest.mark.parametrize("s2,lam", [pytest.param(1.0, 50.0, marks=pytest.mark.slow), (4.0, 20.0)])
def test_linear_vae_reaches_the_closed_form_optimum(s2, lam):
    beta = 1.0 / lam
    rng = np.random.default_rng(0)
    train = rng.normal(0.0, np.sqrt(s2), (20_000, 1))
    evaluation = rng.normal(0.0, np.sqrt(s2), (5_000, 1))
    cfg = TrialConfig(
        study="linear",
        budget="test",
        dataset="gauss1d",
        loss="se",
        seed=0,
        latent_dim=1,
        lam=lam,
        hidden=(),
        epochs=40,
        n_train=20_000,
        n_eval=5_000,
        batch_size=128,
        lr=1e-2,
    )
    outcome = train_model(cfg, TrialData(train, evaluation, None))
    found = measure(outcome.model, cfg, evaluation, None, get_metric("se"))
    sigma2_opt = beta / (2 * s2)
    dim = found.dims[0]
    assert 1.0 / dim["sigma_inv2_mean"] == pytest.approx(sigma2_opt, rel=0.05)
    assert found.scalars["coding_loss"] == pytest.approx(beta / 2 * (1 - sigma2_opt), rel=0.05)
    assert dim["norm_mean"] == pytest.approx(1 - sigma2_opt, rel=0.03)
    torch.testing.assert_close(torch.tensor(dim["norm_sd"]), torch.tensor(0.0), atol=0.01, rtol=0)
