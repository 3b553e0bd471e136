"""The VAE objectives of METHOD.md section 2, in code form with lambda = 1/beta.

- conventional: ``L = lambda * D(x, x_hat) + KL``
- decomposed:   ``L = lambda1 * D_T(x, x_breve) + lambda2 * D(x_breve, x_hat) + KL``
with ``x_breve = Dec(mu)``, ``x_hat = Dec(mu + sigma * eps)`` and
``KL = sum_j 0.5 (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1)`` (paper, eqs. 1-3 and 9).
"""

from __future__ import annotations

from typing import Protocol

import torch

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.metrics import Metric

Tensor = torch.Tensor


class VAE(Protocol):
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]: ...

    def decode(self, z: Tensor) -> Tensor: ...


def kl_per_dim(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per sample and latent dim, shape (batch, n)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)


def objective_terms(
    model: VAE, x: Tensor, eps: Tensor, cfg: TrialConfig, metric: Metric, transform: Metric | None = None
) -> dict[str, Tensor]:
    """Per-sample named terms of the objective; ``loss`` is the code-form L_x.

    ``eps`` is the standard-normal noise of the reparameterisation, drawn by the caller so that
    every random draw of a trial comes from that trial's own generator.
    """
    mu, logvar = model.encode(x)
    z = mu + (0.5 * logvar).exp() * eps
    x_hat = model.decode(z)
    kl = kl_per_dim(mu, logvar).sum(dim=1)
    if cfg.form == "conventional":
        assert cfg.lam is not None
        recon = metric(x, x_hat, cfg.reduction)
        return {"loss": cfg.lam * recon + kl, "recon": recon, "kl": kl}
    assert cfg.lam1 is not None and cfg.lam2 is not None
    x_breve = model.decode(mu)
    transform_loss = (transform or metric)(x, x_breve, cfg.reduction)
    coding_loss = metric.distance(x_breve, x_hat, cfg.reduction)
    return {
        "loss": cfg.lam1 * transform_loss + cfg.lam2 * coding_loss + kl,
        "recon": transform_loss + coding_loss,
        "kl": kl,
        "transform": transform_loss,
        "coding": coding_loss,
    }
