"""The measurements of docs/method.md section 4, taken after training on an evaluation set.

All of them run in float64 on a copy of the trained model in eval mode, so that the finite
differences of D' are exact to about eps^2.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from scipy import stats

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.metrics import Metric
from isosweep.trainers.objective import VAE, kl_per_dim
from isosweep.trainers.records import ESTIMATES

Tensor = torch.Tensor
MEASURE_STREAM = 4
CHUNK = 2048


def dprime_fd(model: VAE, mu: Tensor, metric: Metric, reduction: str, eps: float) -> Tensor:
    """D'_j = [D(x_breve, Dec(mu + eps e_j)) + D(x_breve, Dec(mu - eps e_j))] / (2 eps^2).

    The paper's one-sided difference (appendix A.5), averaged over both sides so that the error is
    O(eps^2); ``x_breve = Dec(mu)`` is the first argument, where the metric's scale is taken.
    Returns (batch, n).
    """
    x_breve = model.decode(mu)
    cols = []
    for j in range(mu.shape[1]):
        step = torch.zeros_like(mu)
        step[:, j] = eps
        up = metric.distance(x_breve, model.decode(mu + step), reduction)
        down = metric.distance(x_breve, model.decode(mu - step), reduction)
        cols.append((up + down) / (2.0 * eps * eps))
    return torch.stack(cols, dim=1)


def _jvp(func: Callable[[Tensor], Tensor], primal: Tensor, tangent: Tensor) -> tuple[Tensor, Tensor]:
    """``torch.func.jvp`` of a function of one tensor: ``func(primal)`` and the Jacobian of ``func``
    at ``primal`` times ``tangent``. (torch types its result as two or three values, the third one
    only with ``has_aux``, which is never asked for here.)"""
    return cast(tuple[Tensor, Tensor], torch.func.jvp(func, (primal,), (tangent,)))


def dprime_jvp(model: VAE, mu: Tensor, metric: Metric, reduction: str) -> Tensor:
    """The exact value of D'_j for a quadratic metric: (J e_j)^T G(x_breve) (J e_j) with
    G(u) = a(u) I and J the decoder's Jacobian at mu (paper, eq. 5). Returns (batch, n)."""
    if metric.scale is None:
        raise ValueError(f"{metric.name} is not a quadratic metric")
    x_breve = model.decode(mu)
    scale = metric.scale(x_breve)
    m = x_breve.reshape(x_breve.shape[0], -1).shape[1]
    cols = []
    for j in range(mu.shape[1]):
        tangent = torch.zeros_like(mu)
        tangent[:, j] = 1.0
        _, jv = _jvp(model.decode, mu, tangent)
        sq = jv.reshape(jv.shape[0], -1).pow(2).sum(dim=1)
        cols.append(scale * (sq if reduction == "sum" else sq / m))
    return torch.stack(cols, dim=1)


def dprime_second_order(model: VAE, mu: Tensor, metric: Metric, reduction: str) -> Tensor:
    """The second-order term of D along the decoder's tangent, for any twice differentiable D:
    ``g''(0) / 2`` with ``g(t) = D(x_breve, x_breve + t d)`` and ``d = J e_j``, by forward-over-forward
    differentiation (``torch.func.jvp`` twice). D(x_breve, .) is smallest (0) at x_breve, so this is
    the limit of ``dprime_fd`` as eps -> 0: a check of it for SSIM and BCE. Returns (batch, n)."""
    x_breve = model.decode(mu)
    one = torch.ones((), dtype=mu.dtype, device=mu.device)
    cols = []
    for j in range(mu.shape[1]):
        tangent = torch.zeros_like(mu)
        tangent[:, j] = 1.0
        _, d = _jvp(model.decode, mu, tangent)

        def g(t: Tensor, d: Tensor = d) -> Tensor:
            return metric.distance(x_breve, x_breve + t * d, reduction)

        def dg(t: Tensor) -> Tensor:
            return _jvp(g, t, one)[1]

        _, curvature = _jvp(dg, torch.zeros_like(one), one)
        cols.append(0.5 * curvature)
    return torch.stack(cols, dim=1)


def expected_distortion(model: VAE, x: Tensor, mu: Tensor, sigma: Tensor, metric: Metric, reduction: str) -> Tensor:
    """E_q[D(x, x_hat)] approximated by 0.5 [D(x, Dec(mu + sigma)) + D(x, Dec(mu - sigma))],
    the whole vector sigma added at once (paper, appendix A.6)."""
    return 0.5 * (metric(x, model.decode(mu + sigma), reduction) + metric(x, model.decode(mu - sigma), reduction))


def lx_terms(model: VAE, x: Tensor, cfg: TrialConfig, metric: Metric) -> tuple[Tensor, Tensor]:
    """The two terms of L_x per sample (paper eq. 20, conventional code form with beta = 1/lambda,
    1/lambda2 for the decomposed form): lambda * E_q[D(x, x_hat)] and the KL divergence."""
    mu, logvar = model.encode(x)
    sigma = (0.5 * logvar).exp()
    distortion = expected_distortion(model, x, mu, sigma, metric, cfg.reduction) / cfg.beta
    return distortion, kl_per_dim(mu, logvar).sum(dim=1)


def score_lx(model: VAE, x: Tensor, cfg: TrialConfig, metric: Metric) -> Tensor:
    """L_x = lambda * E_q[D(x, x_hat)] + KL, per sample. exp(-L_x) is proportional to the paper's
    density estimate exp(-L_x/beta) (eq. 20); it is also the anomaly score."""
    distortion, kl = lx_terms(model, x, cfg, metric)
    return distortion + kl


def anomaly_score(model: VAE, x: Tensor, cfg: TrialConfig, metric: Metric) -> Tensor:
    """The anomaly trial's score per sample (``cfg.score``): L_x (``score_lx``, the default), or
    with ``recon`` L_x less its KL term, lambda2 * E_q[D(x, x_hat)], the reconstruction part alone."""
    distortion, kl = lx_terms(model, x, cfg, metric)
    return distortion if cfg.score == "recon" else distortion + kl


def pearson_on_raw(log_a: np.ndarray, log_b: np.ndarray) -> float | None:
    """Pearson R between exp(log_a) and exp(log_b); each shifted by its max first (R is scale-free)."""
    a, b = np.exp(log_a - log_a.max()), np.exp(log_b - log_b.max())
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def spearman(log_a: np.ndarray, log_b: np.ndarray) -> float | None:
    if np.ptp(log_a) == 0 or np.ptp(log_b) == 0:
        return None
    return float(stats.spearmanr(log_a, log_b).statistic)


@dataclass
class Measurements:
    """Per-trial scalars, per-dimension aggregates and per-point values (the store's rows)."""

    scalars: dict[str, Any]
    dims: list[dict[str, Any]]
    points: dict[str, np.ndarray]


def _per_sample(
    model: VAE, x: Tensor, cfg: TrialConfig, metric: Metric, gen: torch.Generator, densities: bool = True
) -> dict[str, Tensor]:
    """Every per-sample quantity on one chunk of evaluation inputs (the density estimates' terms
    only where ``densities``)."""
    mu, logvar = model.encode(x)
    sigma2 = logvar.exp()
    sigma = sigma2.sqrt()
    x_breve = model.decode(mu)
    # Noise from a CPU generator, whatever the device: the same draws on a GPU as on a CPU.
    noise = torch.randn(mu.shape, generator=gen, dtype=mu.dtype).to(mu.device)
    x_hat = model.decode(mu + sigma * noise)
    dprime = dprime_fd(model, mu, metric, cfg.reduction, cfg.fd_eps)
    kl = kl_per_dim(mu, logvar)
    out = {
        "sigma_inv2": 1.0 / sigma2,
        "kl": kl,
        "dprime": dprime,
        "norm": (2.0 / cfg.beta) * sigma2 * dprime,
        "recon": metric(x, x_hat, cfg.reduction),
        "coding": metric.distance(x_breve, x_hat, cfg.reduction),
        "transform": metric.distance(x, x_breve, cfg.reduction),
    }
    if densities:
        eq_d = expected_distortion(model, x, mu, sigma, metric, cfg.reduction)
        n = mu.shape[1]
        log_prior = -0.5 * mu.pow(2).sum(dim=1) - 0.5 * n * math.log(2.0 * math.pi)
        scale = metric.scale(x) if metric.scale is not None else torch.ones_like(log_prior)
        out.update(
            {
                "log_prior": log_prior,
                "log_elbo": -(eq_d / cfg.beta + kl.sum(dim=1)),
                "log_post": log_prior + 0.5 * logvar.sum(dim=1),
                "log_scale": scale.log(),
            }
        )
    return out


def measure(
    model: torch.nn.Module,
    cfg: TrialConfig,
    x_eval: np.ndarray,
    log_p_true: np.ndarray | None,
    metric: Metric,
    chunk: int = CHUNK,
    device: torch.device | str = "cpu",
) -> Measurements:
    """All measurements of docs/method.md section 4 for one trained model.

    ``x_eval`` has the model's input shape after its first axis (vectors, or (C, H, W) images).
    The density estimates need the true ``log_p_true``; without it (images) they are skipped.
    ``chunk`` inputs are measured at a time on ``device``: each chunk is decoded 2n + 2 times.
    """
    model64 = copy.deepcopy(model).to(device=device, dtype=torch.float64).eval()
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([cfg.seed, MEASURE_STREAM]).generate_state(1)[0]))
    x_all = torch.as_tensor(x_eval, dtype=torch.float64)
    densities = log_p_true is not None
    parts: dict[str, list[Tensor]] = {}
    with torch.no_grad():
        for start in range(0, x_all.shape[0], chunk):
            x = x_all[start : start + chunk].to(device)
            for name, value in _per_sample(model64, x, cfg, metric, gen, densities).items():  # type: ignore[arg-type]
                parts.setdefault(name, []).append(value.cpu())
    per = {name: torch.cat(chunks).numpy() for name, chunks in parts.items()}

    kl_mean = per["kl"].mean(axis=0)
    active = kl_mean > cfg.active_kl
    n_active = int(active.sum())
    sigma_inv2_mean = per["sigma_inv2"].mean(axis=0)
    order = np.argsort(-sigma_inv2_mean, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(1, len(order) + 1)
    smallest_active = sigma_inv2_mean[active].min() if n_active else None
    dims = [
        {
            "dim": j,
            "rank": int(rank[j]),
            "active": bool(active[j]),
            "norm_mean": float(per["norm"][:, j].mean()),
            "norm_sd": float(per["norm"][:, j].std()),
            "dprime_mean": float(per["dprime"][:, j].mean()),
            "dprime_sd": float(per["dprime"][:, j].std()),
            "sigma_inv2_mean": float(sigma_inv2_mean[j]),
            "var_ratio": float(sigma_inv2_mean[j] / smallest_active) if smallest_active else None,
            "kl_mean": float(kl_mean[j]),
        }
        for j in range(cfg.latent_dim)
    ]

    coding, transform = float(per["coding"].mean()), float(per["transform"].mean())
    scalars: dict[str, Any] = {
        "recon": float(per["recon"].mean()),
        "kl": float(per["kl"].sum(axis=1).mean()),
        "coding_loss": coding,
        "transform_loss": transform,
        "transform_coding_ratio": transform / coding if coding > 0 else None,
        "n_active": n_active,
        "coding_theory": n_active * cfg.beta / 2.0,
        "norm_active_mean": float(per["norm"][:, active].mean()) if n_active else None,
    }
    points: dict[str, np.ndarray] = {}
    if log_p_true is not None:
        # Metric-aware estimates (eq. 20 with G_x = a_x I): add (n_active / 2) log a_x.
        metric_term = 0.5 * n_active * per["log_scale"]
        log_est = {
            "prior": per["log_prior"],
            "elbo": per["log_elbo"],
            "post": per["log_post"],
            "elbo_metric": per["log_elbo"] + metric_term,
            "post_metric": per["log_post"] + metric_term,
        }
        finite = np.isfinite(log_p_true)
        for name in ESTIMATES:
            scalars[f"corr_{name}"] = pearson_on_raw(log_p_true[finite], log_est[name][finite])
            scalars[f"rank_{name}"] = spearman(log_p_true[finite], log_est[name][finite])
        keep = slice(0, cfg.points_cap)
        points = {"log_p_true": log_p_true[keep], **{f"log_{name}": log_est[name][keep] for name in ESTIMATES}}
    return Measurements(scalars, dims, points)
