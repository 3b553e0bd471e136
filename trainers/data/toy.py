"""The toy data sets of the paper's section 5.1 (docs/method.md section 5.1), with exact densities.

Three independent sources ``s = (s1, s2, s3)`` with variances 1/6, 2/3, 8/3 (ratio 1 : 4 : 16) are
embedded in R^16 by ``x = V s`` where V has orthonormal columns (QR of a Gaussian matrix from a
fixed data seed). Since V^T V = I, the density of x on the 3-dimensional subspace is
``p(x) = p1(s1) p2(s2) p3(s3)`` with ``s = V^T x``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INPUT_DIM = 16
SOURCE_VARIANCES = (1.0 / 6.0, 2.0 / 3.0, 8.0 / 3.0)


@dataclass(frozen=True)
class Source:
    """A zero-mean one-dimensional source with variance ``var`` and shape ``shape``."""

    shape: str
    """``normal``; ``ramp``: density rising linearly on an interval of width sqrt(18 var);
    ``uniform``: flat on [-sqrt(3 var), sqrt(3 var)]."""
    var: float

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.shape == "normal":
            return rng.normal(0.0, math.sqrt(self.var), n)
        if self.shape == "uniform":
            half = math.sqrt(3.0 * self.var)
            return rng.uniform(-half, half, n)
        if self.shape == "ramp":
            # t on [0, L] with density 2t/L^2 (inverse CDF L*sqrt(u)); mean 2L/3, variance L^2/18.
            width = math.sqrt(18.0 * self.var)
            return width * np.sqrt(rng.uniform(0.0, 1.0, n)) - 2.0 * width / 3.0
        raise ValueError(f"unknown source shape {self.shape!r}")

    def log_pdf(self, s: np.ndarray) -> np.ndarray:
        """log density at s; -inf outside the support."""
        s = np.asarray(s, dtype=np.float64)
        if self.shape == "normal":
            return -0.5 * (s * s / self.var + math.log(2.0 * math.pi * self.var))
        if self.shape == "uniform":
            half = math.sqrt(3.0 * self.var)
            inside = np.abs(s) <= half
            return np.where(inside, -math.log(2.0 * half), -np.inf)
        if self.shape == "ramp":
            width = math.sqrt(18.0 * self.var)
            t = s + 2.0 * width / 3.0
            inside = (t > 0.0) & (t <= width)
            with np.errstate(divide="ignore", invalid="ignore"):
                logp = np.log(2.0 * np.clip(t, 0.0, None) / width**2)
            return np.where(inside, logp, -np.inf)
        raise ValueError(f"unknown source shape {self.shape!r}")


# Each data set's three source shapes, in the order of increasing variance.
TOY_DATASETS: dict[str, tuple[str, str, str]] = {
    "norm": ("normal", "normal", "normal"),
    "ramp": ("ramp", "ramp", "ramp"),
    # docs/method.md's choice for `mix`: three different shapes.
    "mix": ("uniform", "ramp", "normal"),
}


def embedding_matrix(data_seed: int) -> np.ndarray:
    """V in R^{16x3} with orthonormal columns: QR of a Gaussian matrix drawn from ``data_seed``."""
    gaussian = np.random.default_rng(data_seed).normal(size=(INPUT_DIM, len(SOURCE_VARIANCES)))
    q, r = np.linalg.qr(gaussian)
    # Fix the signs so that V is a function of the seed alone (QR is unique up to column signs).
    return q * np.sign(np.diag(r))


@dataclass(frozen=True)
class ToyData:
    """A toy data set: sampling and the exact log-density of x."""

    name: str
    data_seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in TOY_DATASETS:
            raise ValueError(f"unknown toy data set {self.name!r}; known: {', '.join(TOY_DATASETS)}")

    @property
    def sources(self) -> tuple[Source, ...]:
        return tuple(Source(shape, var) for shape, var in zip(TOY_DATASETS[self.name], SOURCE_VARIANCES))

    @property
    def input_dim(self) -> int:
        return INPUT_DIM

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n points x = V s, float64, shape (n, 16)."""
        s = np.stack([src.sample(n, rng) for src in self.sources], axis=1)
        return s @ embedding_matrix(self.data_seed).T

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """log p(x) = sum_k log p_k(s_k), s = V^T x (density on the 3-dim subspace)."""
        s = np.asarray(x, dtype=np.float64) @ embedding_matrix(self.data_seed)
        # ``sum`` starts from zeros as an array, not the int 0, so that its result is typed as one
        # (the same sums as from the int 0).
        return sum((src.log_pdf(s[:, k]) for k, src in enumerate(self.sources)), np.zeros(s.shape[0]))
