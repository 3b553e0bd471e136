"""Generalized divisive normalization (GDN) and its inverse (IGDN), as layers for conv nets.

J. Balle, V. Laparra, E. P. Simoncelli, "Density modeling of images using a generalized
normalization transformation", ICLR 2016, eq. (1) with the exponents fixed at 2 and 1/2, as in
their image-compression models:

    GDN:   y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)
    IGDN:  y_i = x_i * sqrt(beta_i + sum_j gamma_ij x_j^2)

with i, j over channels at each pixel. beta must stay positive and gamma non-negative, so both are
trained through the usual non-negative reparameterisation of Balle's later compression code: the
stored parameter p gives ``value = max(p, bound)^2 - pedestal``, where the pedestal (2^-36) keeps
the gradient of the square away from zero near 0 and the bound keeps beta >= ``beta_min``. The
bound's gradient passes through where it would push the parameter back above the bound, so a
parameter that reaches the bound is not stuck there.

The project carries its own layer (docs/method.md 5.2): CompressAI cannot be installed beside this stack.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

Tensor = torch.Tensor

REPARAM_OFFSET = 2.0**-18
PEDESTAL = REPARAM_OFFSET**2
BETA_MIN = 1e-6
GAMMA_INIT = 0.1


class _LowerBound(torch.autograd.Function):
    """max(x, bound), with the gradient passed where x >= bound or where it points upwards
    (gradient descent then raises x), so that a bounded parameter can leave the bound again."""

    @staticmethod
    def forward(x: Tensor, bound: Tensor) -> Tensor:
        return torch.maximum(x, bound)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:
        x, bound = inputs
        ctx.save_for_backward(x, bound)
        ctx.save_for_forward(x, bound)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        x, bound = ctx.saved_tensors
        passes = (x >= bound) | (grad < 0)
        return grad * passes.to(grad.dtype), None

    @staticmethod
    def jvp(ctx: Any, x_tangent: Tensor, bound_tangent: Any) -> Tensor:
        # Forward mode (torch.func.jvp through a trained decoder): the derivative of max(x, bound).
        x, bound = ctx.saved_tensors
        return x_tangent * (x >= bound).to(x_tangent.dtype)


def lower_bound(x: Tensor, bound: float) -> Tensor:
    return _LowerBound.apply(x, torch.tensor(bound, dtype=x.dtype, device=x.device))


class NonNegative(nn.Module):
    """A non-negative parameter through ``value = max(p, sqrt(minimum + pedestal))^2 - pedestal``."""

    def __init__(self, initial: Tensor, minimum: float = 0.0):
        super().__init__()
        self.bound = (minimum + PEDESTAL) ** 0.5
        self.raw = nn.Parameter(torch.sqrt(torch.clamp(initial + PEDESTAL, min=PEDESTAL)))

    def forward(self) -> Tensor:
        return lower_bound(self.raw, self.bound).pow(2) - PEDESTAL


class GDN(nn.Module):
    """GDN (or IGDN with ``inverse=True``) over the channels of (batch, C, H, W) inputs
    (Balle et al. 2016, eq. 1): ``x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)``.

    Initialised as in Balle's compression models: beta = 1, gamma = 0.1 I.
    """

    def __init__(
        self, channels: int, inverse: bool = False, beta_min: float = BETA_MIN, gamma_init: float = GAMMA_INIT
    ):
        super().__init__()
        self.channels = channels
        self.inverse = inverse
        self.beta = NonNegative(torch.ones(channels), minimum=beta_min)
        self.gamma = NonNegative(gamma_init * torch.eye(channels))

    def effective(self) -> tuple[Tensor, Tensor]:
        """The parameters in use: beta (C,) and gamma (C, C), after the reparameterisation."""
        return self.beta(), self.gamma()

    def forward(self, x: Tensor) -> Tensor:
        beta, gamma = self.effective()
        # sum_j gamma_ij x_j^2 + beta_i at every pixel: a 1x1 convolution of x^2.
        norm = F.conv2d(x * x, gamma.reshape(self.channels, self.channels, 1, 1), beta)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)

    def extra_repr(self) -> str:
        return f"{self.channels}, inverse={self.inverse}"


def IGDN(channels: int, beta_min: float = BETA_MIN, gamma_init: float = GAMMA_INIT) -> GDN:
    """Inverse GDN: ``x_i * sqrt(beta_i + sum_j gamma_ij x_j^2)`` (Balle et al. 2016)."""
    return GDN(channels, inverse=True, beta_min=beta_min, gamma_init=gamma_init)
