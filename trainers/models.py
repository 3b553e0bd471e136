"""Networks of docs/method.md section 5: the MLP VAE of the toy study.

Encoder FC(m, h1, act) - FC(h1, h2, act) - FC(h2, n) x 2 (mu and log sigma^2); the decoder mirrors
it with a linear output (or ``output_activation``, a recorded setting of the anomaly trial).
Predicting log sigma^2 keeps sigma positive and the gradient stable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU}
OUTPUT_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid,
    "leaky_relu": nn.functional.leaky_relu,
}
"""Activations the decoder's last layer may have (``TrialConfig.output_activation``); a function,
not a module, so that the parameter names, and so the checkpoints, stay those of a linear output."""


def _mlp(widths: Sequence[int], activation: str, linear_output: bool) -> nn.Sequential:
    """FC layers with ``activation`` after every layer (but the last, if ``linear_output``)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if not (linear_output and i == len(widths) - 2):
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class VAEModule(nn.Module):
    """A VAE as a torch module: the ``VAE`` of ``isosweep.trainers.objective`` (``encode(x) ->
    (mu, log sigma^2)``, ``decode(z) -> x``) with the parameters training updates. Every model the
    trainers build is one, so that a model is typed as both a module and a VAE."""

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class MLPVAE(VAEModule):
    """A fully connected VAE: ``encode(x) -> (mu, log sigma^2)``, ``decode(z) -> x``."""

    def __init__(
        self,
        input_dim: int,
        hidden: Sequence[int],
        latent_dim: int,
        activation: str = "tanh",
        output_activation: str | None = None,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
        if output_activation is not None and output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"unknown output activation {output_activation!r}; known: {', '.join(OUTPUT_ACTIVATIONS)}")
        self.output_activation = output_activation
        self.latent_dim = latent_dim
        # With no hidden layers the VAE is linear (the model of the paper's appendix A.3).
        self.body = _mlp([input_dim, *hidden], activation, linear_output=False)
        width = hidden[-1] if hidden else input_dim
        self.mu = nn.Linear(width, latent_dim)
        self.logvar = nn.Linear(width, latent_dim)
        self.decoder = _mlp([latent_dim, *reversed(hidden), input_dim], activation, linear_output=True)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return output_activation(self.decoder(z), self.output_activation)


def output_activation(h: torch.Tensor, name: str | None) -> torch.Tensor:
    """The decoder's output activation ``name`` applied to ``h`` (None: linear, ``h`` itself)."""
    return h if name is None else OUTPUT_ACTIVATIONS[name](h)


def build_model(
    input_dim: int,
    hidden: Sequence[int],
    latent_dim: int,
    activation: str,
    seed: int,
    output_activation: str | None = None,
) -> MLPVAE:
    """The model initialised from ``seed`` alone (PyTorch's default layer init), leaving the
    global random state untouched. The output activation has no parameters, so it leaves the
    initial weights unchanged."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLPVAE(input_dim, hidden, latent_dim, activation, output_activation)
