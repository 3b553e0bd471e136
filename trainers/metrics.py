"""The reconstruction metrics D(a, b) of docs/method.md section 3, registered by name in one place.

Every metric maps two batches of shape (batch, ...) to a per-sample tensor of shape (batch,). The
same function serves training, the decomposed terms and every measurement, so no part of the
project can use a different reduction than another.

Quadratic metrics (``se``, ``dconv``, ``uconv``) have the form ``D(a, b) = a(a) * ||a - b||^2`` with
metric tensor ``G = a(a) I`` (paper, section 3 and appendix C: the toy losses); ``scale`` returns
``a(u)`` per sample, which the metric-aware density estimates and the Jacobian check use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

Tensor = torch.Tensor

# a(u) = 2/3 + 2 ||u||^2 / 21: its mean over the toy data (total variance 1/6 + 2/3 + 8/3 = 7/2)
# is 2/3 + (2/21)(7/2) = 1, so the three toy losses have the same average scale.
_DCONV_OFFSET = 2.0 / 3.0
_DCONV_SLOPE = 2.0 / 21.0


def _flat(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], -1)


def _sq_sum(a: Tensor, b: Tensor, reduction: str) -> Tensor:
    """Squared error summed (or averaged, ``reduction='mean'``) over the input dims."""
    d = (_flat(a) - _flat(b)).pow(2)
    return d.sum(dim=1) if reduction == "sum" else d.mean(dim=1)


def dconv_scale(u: Tensor) -> Tensor:
    """a(u) = 2/3 + 2||u||^2/21, the downward-convex metric's scale (docs/method.md section 3)."""
    return _DCONV_OFFSET + _DCONV_SLOPE * _flat(u).pow(2).sum(dim=1)


def uconv_scale(u: Tensor) -> Tensor:
    """a(u) = 1 / (2/3 + 2||u||^2/21), the upward-convex metric's scale (docs/method.md section 3)."""
    return 1.0 / dconv_scale(u)


def unit_scale(u: Tensor) -> Tensor:
    """a(u) = 1 for plain squared error (G = I)."""
    return torch.ones(u.shape[0], dtype=u.dtype, device=u.device)


_BCE_CLAMP = 1e-7


def _bce(a: Tensor, b: Tensor) -> Tensor:
    """mean_i -[a_i log b_i + (1 - a_i) log(1 - b_i)], b clamped away from 0 and 1."""
    a, b = _flat(a), _flat(b).clamp(_BCE_CLAMP, 1.0 - _BCE_CLAMP)
    return -(a * b.log() + (1.0 - a) * (1.0 - b).log()).mean(dim=1)


@dataclass(frozen=True)
class Metric:
    """A reconstruction metric D: a per-sample function of two batches, and its properties."""

    name: str
    fn: Callable[[Tensor, Tensor, str], Tensor]
    """D(a, b, reduction) -> (batch,)."""
    scale: Callable[[Tensor], Tensor] | None = None
    """a(u) with G(u) = a(u) I for quadratic metrics; None for the others."""
    divergence: Callable[[Tensor, Tensor, str], Tensor] | None = None
    """D as a distance that is 0 at a == b, where D itself is not (BCE); None means D itself."""

    def __call__(self, a: Tensor, b: Tensor, reduction: str = "sum") -> Tensor:
        return self.fn(a, b, reduction)

    def distance(self, a: Tensor, b: Tensor, reduction: str = "sum") -> Tensor:
        """D used as a distance or reported as a loss (D', coding and transform loss)."""
        f = self.divergence or self.fn
        return f(a, b, reduction)

    @property
    def quadratic(self) -> bool:
        return self.scale is not None


def _se(a: Tensor, b: Tensor, reduction: str) -> Tensor:
    return _sq_sum(a, b, reduction)


def _dconv(a: Tensor, b: Tensor, reduction: str) -> Tensor:
    return dconv_scale(a) * _sq_sum(a, b, reduction)


def _uconv(a: Tensor, b: Tensor, reduction: str) -> Tensor:
    return uconv_scale(a) * _sq_sum(a, b, reduction)


def _l2(a: Tensor, b: Tensor, reduction: str) -> Tensor:
    # ||a - b||_2, not squared: only a transform loss D_T in the anomaly study.
    return (_flat(a) - _flat(b)).norm(dim=1)


# SSIM as docs/method.md section 3 fixes it: Gaussian window 11, sigma 1.5, data range 1, K = (0.01, 0.03).
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def _ssim(a: Tensor, b: Tensor, reduction: str) -> Tensor:
    """1 - SSIM(a, b) per image of (batch, C, H, W) inputs: SSIM of Wang, Bovik, Sheikh, Simoncelli
    (IEEE TIP 2004) from pytorch-msssim, averaged over the (valid-window) image and its channels."""
    from pytorch_msssim import ssim  # an optional dependency (extra ``images``): loaded when used

    if a.dim() != 4:
        raise ValueError(f"ssim compares images of shape (batch, C, H, W); got shape {tuple(a.shape)}")
    return 1.0 - ssim(a, b, data_range=1.0, size_average=False, win_size=SSIM_WINDOW, win_sigma=SSIM_SIGMA)


def _bce_metric(a: Tensor, b: Tensor, reduction: str) -> Tensor:
    return _bce(a, b)


def _bce_divergence(a: Tensor, b: Tensor, reduction: str) -> Tensor:
    # bce(a, a) is the entropy of a, not 0: the Bernoulli KL divergence bce(a, b) - bce(a, a)
    # is the distance (docs/method.md section 3); without it D' comes out orders of magnitude too large.
    return _bce(a, b) - _bce(a, a)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("se", _se, unit_scale),
        Metric("dconv", _dconv, dconv_scale),
        Metric("uconv", _uconv, uconv_scale),
        Metric("l2", _l2),
        Metric("bce", _bce_metric, divergence=_bce_divergence),
        Metric("ssim", _ssim),
    )
}


def get_metric(name: str) -> Metric:
    """The registered metric called ``name``; a clear error naming the known ones otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(sorted(METRICS))}") from None
