"""Planning: which trials to run, and how to group them into bundles for the workers.

A bundle is a list of trials with the same architecture and budget that one Ray trial trains.
Bundling amortises Ray's per-trial cost (scheduling, process start, reporting) over many small
trials; the store and the trial keys never depend on it.

How many trials a fused bundle holds (``--fuse auto``):

- On CPUs: one bundle per slot (a slot is ``--cpus-per-trial`` cores): the fewest, largest bundles
  train fastest (``benchmarks/fusion.py``), and anomaly bundles split into cache-sized units inside
  (``isosweep.trainers.anomaly.CPU_UNIT_MEMBERS``).
- When the Ray trials hold GPUs (``GpuBudget``, known once the driver has connected to the
  cluster): as many members as the trial's share of GPU memory holds, by the estimate of
  ``isosweep.trainers.memory`` (``gpu_bundle_size``), and no more than spreads the trials over every
  GPU slot. Throughput sets no lower cap: a GPU step costs about the same time for one member as
  for many, up to the point where the stacked matmuls fill the device, and beyond it the time grows
  in proportion to the members; so member-samples per second never fall as members are added, and
  the fewest bundles that keep every slot busy are the fastest (``benchmarks/gpu.py`` measures the
  step time against the members on the device).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from isosweep.errors import UsageError
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.kinds import fusable
from isosweep.trainers.memory import member_bytes

# Trials that cannot fuse run one after another in a bundle: `auto` keeps such bundles small, so
# that slots stay evenly busy while the sweep drains.
AUTO_MAX_SEQUENTIAL = 30

GPU_MEMORY_SHARE = 0.8
"""Of a Ray trial's share of GPU memory, what its members may take (the rest: the caching
allocator's slack and fragmentation)."""
GPU_RESERVED_BYTES = 1 << 30
"""Taken off first: the CUDA context, kernels, and the snapshot and measurement buffers of one
member at a time."""


@dataclass(frozen=True)
class GpuBudget:
    """What each Ray trial gets when the trials hold GPUs."""

    memory_bytes: float
    """Device memory of one Ray trial: the GPU's memory times ``--gpus-per-trial`` (at most 1)."""
    slots: int
    """Ray trials that run at once on the cluster's GPUs: GPUs / ``--gpus-per-trial``."""


def gpu_bundle_size(members: Sequence[TrialConfig], budget: GpuBudget) -> int:
    """Members per fused bundle on a GPU: ``min(ceil(n / slots), K_mem)`` with
    ``K_mem = (GPU_MEMORY_SHARE * memory - GPU_RESERVED_BYTES) / member_bytes`` (module docstring)."""
    per_member = max(member_bytes(c) for c in members)
    fit = int((GPU_MEMORY_SHARE * budget.memory_bytes - GPU_RESERVED_BYTES) // per_member)
    return max(1, min(math.ceil(len(members) / max(1, budget.slots)), fit))


@dataclass(frozen=True)
class SweepPlan:
    """The trials of one run: all planned, those already complete, and the bundles to run."""

    planned: tuple[TrialConfig, ...]
    complete: frozenset[str]
    bundles: tuple[tuple[TrialConfig, ...], ...]
    fuse: int | str = "auto"
    """The ``--fuse`` setting the bundles were made with."""

    @property
    def to_run(self) -> list[TrialConfig]:
        return [c for b in self.bundles for c in b]

    def for_gpu(self, budget: GpuBudget) -> SweepPlan:
        """The same trials bundled for Ray trials that hold GPUs (``--fuse auto`` only)."""
        if self.fuse != "auto":
            return self
        return SweepPlan(
            self.planned, self.complete, make_bundles(self.to_run, self.fuse, budget.slots, budget), self.fuse
        )


def parse_fuse(text: str | None) -> int | str:
    """``auto`` (default), ``off`` (one trial per bundle) or a positive bundle size."""
    if text is None or text == "auto":
        return "auto"
    if text == "off":
        return 1
    try:
        size = int(text)
    except ValueError:
        size = 0
    if size < 1:
        raise UsageError(f"--fuse {text!r}: use auto, off, or a positive number of trials per bundle")
    return size


def bundle_size(fuse: int | str, n_trials: int, slots: int, fuses: bool) -> int:
    """Trials per bundle. ``auto``: trials that fuse as one vectorised bundle per slot (fewest,
    largest bundles train fastest: benchmarks/fusion.py); others two bundles per slot."""
    if fuse != "auto":
        return int(fuse)
    if fuses:
        return max(1, math.ceil(n_trials / max(1, slots)))
    return max(1, min(AUTO_MAX_SEQUENTIAL, math.ceil(n_trials / max(1, 2 * slots))))


def make_bundles(
    configs: Sequence[TrialConfig], fuse: int | str, slots: int, gpu: GpuBudget | None = None
) -> tuple[tuple[TrialConfig, ...], ...]:
    """Group compatible trials (one fusion key: architecture, budget, schedule) into bundles,
    order preserved; the trainers' kinds (``isosweep.trainers.kinds``) say which bundles fuse.
    With ``gpu`` (the Ray trials hold GPUs), ``auto`` sizes fused bundles by ``gpu_bundle_size``."""
    groups: dict[tuple, list[TrialConfig]] = {}
    for cfg in configs:
        groups.setdefault(cfg.fusion_key(), []).append(cfg)
    bundles: list[tuple[TrialConfig, ...]] = []
    for members in groups.values():
        if fuse == "auto" and gpu is not None and fusable(members):
            size = gpu_bundle_size(members, gpu)
        else:
            size = bundle_size(fuse, len(members), slots, fusable(members))
        # Spread evenly: n trials in ceil(n/size) bundles of nearly equal size.
        count = math.ceil(len(members) / size)
        bundles.extend(tuple(members[i::count]) for i in range(count))
    return tuple(bundles)


def make_plan(
    configs: Sequence[TrialConfig], complete: set[str], fuse: int | str, slots: int, force: bool
) -> SweepPlan:
    """Skip completed keys (``complete``: ``isosweep.orchestrator.status.done_keys``; none under
    ``force``) and bundle the rest."""
    unique = list({c.key: c for c in configs}.values())
    done = frozenset() if force else frozenset(k for k in complete if k in {c.key for c in unique})
    remaining = [c for c in unique if c.key not in done]
    return SweepPlan(tuple(unique), done, make_bundles(remaining, fuse, slots), fuse)
