"""The units of an anomaly bundle: members that step together as one model with one Adam
(``Unit``), how a bundle's members are cut into units (``unit_groups``), and the training rows
every unit reads (``FitRows``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from isosweep.trainers.anomaly.protocol import AnomalySplit
from isosweep.trainers.capture import stacked_adam
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.device import draw_on_cpu, to_cpu
from isosweep.trainers.metrics import get_metric
from isosweep.trainers.models import MLPVAE, build_model
from isosweep.trainers.objective import objective_terms
from isosweep.trainers.stacked import MemberLosses, StackedVAE, freeze_member
from isosweep.trainers.training import CURVE_TERMS

CPU_UNIT_MEMBERS = 16
"""At most this many members step as one stacked model on a CPU; a larger bundle trains as several
such units side by side. On a CPU the stacked step is bound by its arithmetic and by the caches.
Measured on this project's 2-core CPU (training alone, one thread, Thyroid, 100 epochs, two runs),
member-epochs per second for units of K members: K = 1 (the unbundled trial's code) 147-155,
8: 305-318, 12: 304-323, 16: 329-350, 25: 300-309.
On a GPU one unit holds the whole bundle."""

Tensor = torch.Tensor


def batches_per_epoch(n_fit: int, batch_size: int) -> int:
    """Optimiser steps per epoch of a member with ``n_fit`` training rows."""
    return math.ceil(n_fit / batch_size)


def default_unit_members(where: torch.device) -> int | None:
    """Members per stacked unit: ``CPU_UNIT_MEMBERS`` on a CPU, the whole bundle (None) on a GPU."""
    return CPU_UNIT_MEMBERS if where.type == "cpu" else None


def unit_groups(counts: Sequence[int], batch_size: int, cap: int | None) -> list[list[int]]:
    """The members (indices into ``counts``, each member's number of training rows) of each unit:
    members with one number of batches per epoch, in units of nearly equal size, each at most
    ``cap`` members (None: no limit)."""
    by_schedule: dict[int, list[int]] = {}
    for k, n in enumerate(counts):
        by_schedule.setdefault(batches_per_epoch(n, batch_size), []).append(k)
    groups: list[list[int]] = []
    for members in by_schedule.values():
        # Units of nearly equal size, each at most `cap` members, cut from the members sorted by
        # split size: a unit then mixes sizes (and masks) only where it must.
        ordered = sorted(members, key=lambda k: (counts[k], k))
        count = math.ceil(len(ordered) / cap) if cap else 1
        size, extra = divmod(len(ordered), count)
        starts = [i * size + min(i, extra) for i in range(count + 1)]
        groups.extend(ordered[starts[i] : starts[i + 1]] for i in range(count))
    return groups


@dataclass(frozen=True)
class FitRows:
    """The training rows of each distinct split once on the device (members of one seed share
    theirs), and one row of zeros last: padded and frozen positions read it."""

    x: Tensor
    offsets: list[int]
    """Per member, the first row of its split in ``x``."""
    zero_row: int

    @classmethod
    def place(cls, splits: Sequence[AnomalySplit], dtype: torch.dtype, device: torch.device) -> FitRows:
        fits: dict[int, int] = {}
        blocks: list[np.ndarray] = []
        offsets = []
        for split in splits:
            if id(split.fit) not in fits:
                fits[id(split.fit)] = sum(b.shape[0] for b in blocks)
                blocks.append(split.fit)
            offsets.append(fits[id(split.fit)])
        input_dim = splits[0].fit.shape[1]
        x = torch.as_tensor(np.concatenate([*blocks, np.zeros((1, input_dim), dtype=blocks[0].dtype)]), dtype=dtype).to(
            device
        )
        return cls(x, offsets, x.shape[0] - 1)


class Unit:
    """The members of a bundle that step together: one batch schedule (the same number of batches
    per epoch), hence one Adam step count.

    More than one member: one ``StackedVAE`` (``isosweep.trainers.stacked``) with the shared
    objective (``MemberLosses``, the ``vae_terms`` of ``isosweep.trainers.objective``), one Adam over
    the stacked tensors (exactly K independent Adams). Rows are padded to the largest member's
    count and masked (see ``train_anomaly_bundle`` of ``isosweep.trainers.anomaly.engine``). One
    member: its own ``MLPVAE`` and ``objective_terms``, the exact operations of a trial trained
    alone, so that a bundle of one gives bit for bit the results of the unbundled trial.
    """

    def __init__(
        self,
        members: list[int],
        cfgs: Sequence[TrialConfig],
        counts: list[int],
        input_dim: int,
        dtype: torch.dtype,
        where: torch.device,
    ):
        self.members = members
        mine = [cfgs[i] for i in members]
        ref = mine[0]
        self.templates = [
            build_model(input_dim, c.hidden, c.latent_dim, c.activation, c.seed, c.output_activation).to(dtype)
            for c in mine
        ]
        self.counts = counts
        self.width = max(counts)
        self.n_batches = batches_per_epoch(self.width, ref.batch_size)
        self.ragged = len(set(counts)) > 1
        self.steps = 0
        self.batch_size, self.latent_dim = ref.batch_size, ref.latent_dim
        self.dtype, self.device = dtype, where
        if len(members) == 1:
            self.single: MLPVAE | None = self.templates[0].to(where)
            self.stacked: StackedVAE | None = None
            self.params: list[Tensor] = list(self.single.parameters())
            self.cfg, self.metric = ref, get_metric(ref.loss)
            self.transform = get_metric(ref.transform_metric or ref.loss)
        else:
            self.single = None
            self.views: dict[int, MLPVAE] = {}
            self.stacked = StackedVAE.from_models(self.templates, ref.activation, dtype, where, feature_major=True)
            self.params = self.stacked.parameters()
            self.losses = MemberLosses(mine, dtype, where)
        self.optimiser = stacked_adam(self.params, ref.lr)
        self.weight = torch.ones(len(members), dtype=dtype, device=where)
        # (K, width) validity of each padded row position, and its count per batch.
        self.valid = (torch.arange(self.width).unsqueeze(0) < torch.tensor(counts).unsqueeze(1)).to(dtype).to(where)

    def terms(self, x: Tensor, eps: Tensor) -> dict[str, Tensor]:
        """(K, B) per-sample terms of every member on (K, B, m) inputs."""
        if self.single is not None:
            found = objective_terms(self.single, x[0], eps[0], self.cfg, self.metric, self.transform)
            return {name: value.unsqueeze(0) for name, value in found.items()}
        assert self.stacked is not None
        return self.losses.terms(self.stacked, x, eps)

    def loss(self, per_sample: Tensor, start: int) -> Tensor:
        """The sum over members of each member's mean loss over its own rows of this batch."""
        if self.single is not None:
            return per_sample[0].mean()
        if not self.ragged:
            return (per_sample.mean(dim=1) * self.weight).sum()
        # Padded rows (beyond a member's count) weigh 0; each member's mean is over its own rows.
        valid = self.valid[:, start : start + per_sample.shape[1]]
        return ((per_sample * valid).sum(dim=1) / valid.sum(dim=1) * self.weight).sum()

    def train_epoch(
        self,
        lr: float,
        rows: FitRows,
        gens: Sequence[torch.Generator],
        diverged: Sequence[str | None],
        shuffled: Sequence[bool],
        sums: list[Tensor] | None,
    ) -> None:
        """One epoch at learning rate ``lr``. ``gens[k]``: member k's generator; ``shuffled[k]``:
        member k walks its rows in a new permutation (``TrialConfig.batch_order``), else in its
        split's order. ``sums`` (a snapshot epoch): add each member's summed curve terms over its
        own rows."""
        for group in self.optimiser.param_groups:
            group["lr"] = lr
        if self.single is not None:
            self.single.train()
        bs, width = self.batch_size, self.width
        index = torch.full((len(self.members), width), rows.zero_row, dtype=torch.long)
        noise = torch.zeros(len(self.members), width, self.latent_dim, dtype=self.dtype)
        for j, k in enumerate(self.members):
            if diverged[k] is not None:
                continue  # frozen: reads the zero row with zero noise
            n = self.counts[j]
            # The draws of a trial trained alone, in its order: the permutation (none when one batch
            # holds every row: the order within it changes nothing), then each batch's noise. A fixed
            # order draws the permutation too and leaves it unused, so that its noise is the shuffled
            # trial's: the two differ in their order alone.
            order = torch.randperm(n, generator=gens[k]) if n > bs else torch.arange(n)
            if not shuffled[k]:
                order = torch.arange(n)
            index[j, :n] = order + rows.offsets[k]
            for start in range(0, n, bs):
                batch = min(bs, n - start)
                noise[j, start : start + batch] = torch.randn(
                    batch, self.latent_dim, generator=gens[k], dtype=self.dtype
                )
        index, noise = draw_on_cpu(index, self.device), draw_on_cpu(noise, self.device)
        for start in range(0, width, bs):
            x = rows.x[index[:, start : start + bs]]
            terms = self.terms(x, noise[:, start : start + bs])
            loss = self.loss(terms["loss"], start)
            self.optimiser.zero_grad(set_to_none=True)
            loss.backward()
            self.optimiser.step()
            self.steps += 1
            if sums is None:
                continue
            with torch.no_grad():
                for j, k in enumerate(self.members):
                    if diverged[k] is None:
                        batch = max(0, min(bs, self.counts[j] - start))
                        sums[k] += torch.stack([terms[t][j, :batch].detach().sum() for t in CURVE_TERMS]).double()

    def member(self, j: int) -> MLPVAE:
        """Member j as an MLPVAE on the unit's device (the live model for a unit of one; for a
        stacked unit, one model per member refreshed with its current parameters)."""
        if self.single is not None:
            return self.single
        assert self.stacked is not None
        if j not in self.views:
            self.views[j] = self.stacked.member(j, self.templates[j])
            return self.views[j]
        return self.stacked.load_member(j, self.views[j])

    def freeze(self, j: int) -> None:
        if self.stacked is not None:
            freeze_member(j, self.params, self.optimiser, self.weight)

    def state(self) -> dict[str, Any]:
        return {
            "params": to_cpu(self.params),
            "optimiser": to_cpu(self.optimiser.state_dict()),
            "steps": self.steps,
            "weight": to_cpu(self.weight),
        }

    def load(self, saved: dict[str, Any]) -> None:
        with torch.no_grad():
            for p, value in zip(self.params, saved["params"]):
                p.copy_(value)
            self.weight.copy_(saved["weight"])
        self.optimiser.load_state_dict(saved["optimiser"])
        self.steps = int(saved["steps"])
