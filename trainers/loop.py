"""The training loop of one trial: Adam on the code-form objective, with checkpoint save/restore.

Every random draw (initialisation, batch order, reparameterisation noise) comes from generators
seeded by the trial's own seed, and the generator state is part of the checkpoint, so a run
restored from a checkpoint continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import torch

from trainers.config import TrialConfig
from trainers.data import TrialData
from trainers.metrics import get_metric
from trainers.models import MLPVAE, build_model
from trainers.objective import objective_terms

LOOP_STREAM = 3
CURVE_TERMS = ("loss", "recon", "kl")

Checkpoint = dict[str, Any]
ReportFn = Callable[[dict[str, float], Callable[[], Checkpoint]], None]
"""Called about every 10 % of training with the latest metrics and a function that builds the
checkpoint (built only if the caller wants one)."""


class TrialDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


def loop_seed(seed: int) -> int:
    """The torch seed of a trial's training loop, independent of its data draws."""
    return int(np.random.SeedSequence([seed, LOOP_STREAM]).generate_state(1)[0])


def learning_rate(cfg: TrialConfig, epoch: int) -> float:
    """lr, or lr/10 in the last third of the epochs for the ``step`` schedule (METHOD.md 5.1)."""
    if cfg.lr_schedule == "step" and epoch >= cfg.epochs - cfg.epochs // 3:
        return cfg.lr / 10.0
    return cfg.lr


def report_epochs(epochs: int) -> set[int]:
    """The epochs (1-based counts of finished epochs) after which progress is reported."""
    every = max(1, math.ceil(epochs / 10))
    return set(range(every, epochs + 1, every)) | {epochs}


@dataclass
class TrainOutcome:
    """What training leaves for the measurements and the store."""

    model: MLPVAE
    curves: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0

    @property
    def loss_final(self) -> float:
        return self.curves[-1]["loss"] if self.curves else float("nan")


def train_model(
    cfg: TrialConfig,
    data: TrialData,
    report: Optional[ReportFn] = None,
    checkpoint: Optional[Checkpoint] = None,
    dtype: torch.dtype = torch.float32,
) -> TrainOutcome:
    """Train one trial's model; resume from ``checkpoint`` when given."""
    metric = get_metric(cfg.loss)
    model = build_model(data.input_dim, cfg.hidden, cfg.latent_dim, cfg.activation, cfg.seed).to(dtype)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(loop_seed(cfg.seed))
    outcome = TrainOutcome(model)
    start_epoch = 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimiser.load_state_dict(checkpoint["optimiser"])
        gen.set_state(checkpoint["generator"])
        outcome.curves = list(checkpoint["curves"])
        outcome.steps = int(checkpoint["steps"])
        start_epoch = int(checkpoint["epoch"])

    x_all = torch.as_tensor(data.train, dtype=dtype)
    n = x_all.shape[0]
    reports = report_epochs(cfg.epochs)
    model.train()
    for epoch in range(start_epoch, cfg.epochs):
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(cfg, epoch)
        order = torch.randperm(n, generator=gen)
        sums = torch.zeros(len(CURVE_TERMS), dtype=torch.float64)
        for start in range(0, n, cfg.batch_size):
            x = x_all[order[start:start + cfg.batch_size]]
            eps = torch.randn(x.shape[0], cfg.latent_dim, generator=gen, dtype=dtype)
            terms = objective_terms(model, x, eps, cfg, metric)
            loss = terms["loss"].mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            outcome.steps += 1
            with torch.no_grad():
                sums += torch.stack([terms[t].detach().sum() for t in CURVE_TERMS]).to(torch.float64)
        means = (sums / n).tolist()
        row = {"step": outcome.steps, "epoch": epoch + 1, **dict(zip(CURVE_TERMS, means))}
        outcome.curves.append(row)
        if not all(math.isfinite(v) for v in means):
            raise TrialDiverged(f"loss became {means[0]} in epoch {epoch + 1}")
        if report is not None and (epoch + 1) in reports:
            done_epoch = epoch + 1

            def make_checkpoint(done_epoch: int = done_epoch) -> Checkpoint:
                return {
                    "epoch": done_epoch,
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "generator": gen.get_state(),
                    "curves": list(outcome.curves),
                    "steps": outcome.steps,
                }

            report(dict(row), make_checkpoint)
    model.eval()
    return outcome
