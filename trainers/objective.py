"""The VAE objectives of docs/method.md section 2, in code form with lambda = 1/beta.

- conventional: ``L = lambda * D(x, x_hat) + KL``
- decomposed:   ``L = lambda1 * D_T(x, x_breve) + lambda2 * D(x_breve, x_hat) + KL``
with ``x_breve = Dec(mu)``, ``x_hat = Dec(mu + sigma * eps)`` and
``KL = sum_j 0.5 (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1)`` (paper, eqs. 1-3 and 9).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.metrics import Metric

Tensor = torch.Tensor


class VAE(Protocol):
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]: ...

    def decode(self, z: Tensor) -> Tensor: ...


def kl_per_dim(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per latent dim, elementwise: the shape of ``mu`` (e.g.
    (batch, n), or (K, batch, n) for a fused bundle)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)


Distance = Callable[[Tensor, Tensor], Tensor]
"""D(a, b) per sample, its reduction over the input dims fixed: (..., batch, m) pairs to (..., batch)."""


def form_weights(cfg: TrialConfig) -> tuple[float, ...]:
    """The objective's weights: ``(lambda,)`` (conventional) or ``(lambda1, lambda2)`` (decomposed)."""
    weights = (cfg.lam,) if cfg.form == "conventional" else (cfg.lam1, cfg.lam2)
    assert all(w is not None for w in weights)
    return weights  # type: ignore[return-value]


def vae_terms(
    model: VAE,
    x: Tensor,
    eps: Tensor,
    form: str,
    weights: Sequence[Any],
    recon: Distance,
    transform: Distance,
    coding: Distance,
) -> dict[str, Tensor]:
    """Per-sample named terms of the code-form objective; ``loss`` is L_x.

    Works on any leading shape: one model's batch (batch, m), or the (K, batch, m) of a fused
    bundle (``isosweep.trainers.fused``), whose ``weights`` are then (K, 1) tensors and whose
    distances evaluate each member with its own metric. ``recon`` is D(x, x_hat) of the
    conventional form; ``transform`` D_T(x, x_breve) and ``coding`` D(x_breve, x_hat) those of the
    decomposed form.
    """
    mu, logvar = model.encode(x)
    z = mu + (0.5 * logvar).exp() * eps
    kl = kl_per_dim(mu, logvar).sum(dim=-1)
    if form == "conventional":
        x_hat = model.decode(z)
        (lam,) = weights
        reconstruction = recon(x, x_hat)
        return {"loss": lam * reconstruction + kl, "recon": reconstruction, "kl": kl}
    lam1, lam2 = weights
    decode_pair = getattr(model, "decode_pair", None)  # a stacked model decodes both in one pass
    if decode_pair is not None:
        x_breve, x_hat = decode_pair(mu, z)
    else:
        x_hat, x_breve = model.decode(z), model.decode(mu)
    transform_loss = transform(x, x_breve)
    coding_loss = coding(x_breve, x_hat)
    return {
        "loss": lam1 * transform_loss + lam2 * coding_loss + kl,
        "recon": transform_loss + coding_loss,
        "kl": kl,
        "transform": transform_loss,
        "coding": coding_loss,
    }


def objective_terms(
    model: VAE, x: Tensor, eps: Tensor, cfg: TrialConfig, metric: Metric, transform: Metric | None = None
) -> dict[str, Tensor]:
    """Per-sample named terms of one trial's objective (``vae_terms``); ``loss`` is the code-form L_x.

    ``eps`` is the standard-normal noise of the reparameterisation, drawn by the caller so that
    every random draw of a trial comes from that trial's own generator.
    """
    reduction, d_t = cfg.reduction, transform or metric
    return vae_terms(
        model,
        x,
        eps,
        cfg.form,
        form_weights(cfg),
        recon=lambda a, b: metric(a, b, reduction),
        transform=lambda a, b: d_t(a, b, reduction),
        coding=lambda a, b: metric.distance(a, b, reduction),
    )
