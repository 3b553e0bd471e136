"""Networks of the image studies (docs/method.md 5.2).

- ``conv_gdn`` (CelebA, 3 x 64 x 64 inputs): encoder Conv(9x9, stride 2, 64, GDN) -
  Conv(5x5, s2, 64, GDN) x 3 - FC(1024, H, softplus) - FC(H, n) x 2 (mu and log sigma^2); decoder
  FC(n, H, softplus) - FC(H, 1024, softplus) - deconv(5x5, s2, 64, IGDN) x 3 - deconv(9x9, s2, 3,
  IGDN). Each stride-2 layer halves (doubles) the side: 64 - 32 - 16 - 8 - 4, and 64 x 4 x 4 =
  1024. GDN/IGDN: Balle, Laparra, Simoncelli (ICLR 2016), ``isosweep.trainers.gdn``. The decoder's output
  is IGDN's, not squashed to [0, 1]: SSIM compares structure at any range.
- ``mlp_sigmoid`` (MNIST, 784 inputs): FC(784, 1024, relu) - FC(1024, 1024, relu) - FC(1024, n) x 2;
  decoder FC(n, 1024, relu) - FC(1024, 1024, relu) - FC(1024, 784, sigmoid): the toy study's MLP
  with a sigmoid output, so that the decoder gives the Bernoulli probabilities of BCE.

Both predict log sigma^2 (stable, sigma > 0), as the toy MLP does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.gdn import GDN, IGDN
from isosweep.trainers.models import MLPVAE, VAEModule

CONV_CHANNELS = 64
IMAGE_SHAPE = (3, 64, 64)
FEATURE_SIDE = 4
"""Side of the last feature map: 64 halved by four stride-2 layers."""


class SigmoidMLPVAE(MLPVAE):
    """The MLP VAE with a sigmoid on the decoder's output (Bernoulli probabilities for BCE)."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))


class ConvGDNVAE(VAEModule):
    """The CelebA conv VAE with GDN/IGDN (docs/method.md 5.2): ``encode(x) -> (mu, log sigma^2)`` for
    x of shape (batch, 3, 64, 64), ``decode(z) -> (batch, 3, 64, 64)``."""

    def __init__(self, latent_dim: int, hidden: int, channels: int = CONV_CHANNELS):
        super().__init__()
        self.latent_dim = latent_dim
        c, flat = channels, channels * FEATURE_SIDE * FEATURE_SIDE
        self.body = nn.Sequential(
            nn.Conv2d(IMAGE_SHAPE[0], c, 9, stride=2, padding=4),
            GDN(c),
            nn.Conv2d(c, c, 5, stride=2, padding=2),
            GDN(c),
            nn.Conv2d(c, c, 5, stride=2, padding=2),
            GDN(c),
            nn.Conv2d(c, c, 5, stride=2, padding=2),
            GDN(c),
            nn.Flatten(),
            nn.Linear(flat, hidden),
            nn.Softplus(),
        )
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.Softplus(),
            nn.Linear(hidden, flat),
            nn.Softplus(),
            nn.Unflatten(1, (c, FEATURE_SIDE, FEATURE_SIDE)),
            nn.ConvTranspose2d(c, c, 5, stride=2, padding=2, output_padding=1),
            IGDN(c),
            nn.ConvTranspose2d(c, c, 5, stride=2, padding=2, output_padding=1),
            IGDN(c),
            nn.ConvTranspose2d(c, c, 5, stride=2, padding=2, output_padding=1),
            IGDN(c),
            nn.ConvTranspose2d(c, IMAGE_SHAPE[0], 9, stride=2, padding=4, output_padding=1),
            IGDN(IMAGE_SHAPE[0]),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


ARCHS = ("conv_gdn", "mlp_sigmoid")


def _single(hidden: Sequence[int]) -> int:
    if len(hidden) != 1:
        raise ValueError(f"the conv_gdn network has one hidden FC width H; got hidden={tuple(hidden)}")
    return int(hidden[0])


def build_image_model(cfg: TrialConfig, input_dim: int) -> VAEModule:
    """The network of ``cfg.arch``, initialised from the trial's seed alone (PyTorch's default
    layer init; GDN's beta = 1, gamma = 0.1 I), leaving the global random state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        if cfg.arch == "conv_gdn":
            return ConvGDNVAE(cfg.latent_dim, _single(cfg.hidden))
        if cfg.arch == "mlp_sigmoid":
            return SigmoidMLPVAE(input_dim, cfg.hidden, cfg.latent_dim, cfg.activation)
    raise ValueError(f"unknown image network {cfg.arch!r}; known: {', '.join(ARCHS)}")
