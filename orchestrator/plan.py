"""Planning: which trials to run, and how to group them into bundles for the workers.

A bundle is a list of trials with the same architecture and budget that one Ray trial trains.
Bundling amortises Ray's per-trial cost (scheduling, process start, reporting) over many small
trials; the store and the trial keys never depend on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from isosweep.errors import UsageError
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.kinds import fusable

# Trials that cannot fuse run one after another in a bundle: `auto` keeps such bundles small, so
# that slots stay evenly busy while the sweep drains.
AUTO_MAX_SEQUENTIAL = 30


@dataclass(frozen=True)
class SweepPlan:
    """The trials of one run: all planned, those already complete, and the bundles to run."""

    planned: tuple[TrialConfig, ...]
    complete: frozenset[str]
    bundles: tuple[tuple[TrialConfig, ...], ...]

    @property
    def to_run(self) -> list[TrialConfig]:
        return [c for b in self.bundles for c in b]


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


def make_bundles(configs: Sequence[TrialConfig], fuse: int | str, slots: int) -> tuple[tuple[TrialConfig, ...], ...]:
    """Group compatible trials (one fusion key: architecture, budget, schedule) into bundles,
    order preserved; the trainers' kinds (``isosweep.trainers.kinds``) say which bundles fuse."""
    groups: dict[tuple, list[TrialConfig]] = {}
    for cfg in configs:
        groups.setdefault(cfg.fusion_key(), []).append(cfg)
    bundles = []
    for members in groups.values():
        size = bundle_size(fuse, len(members), slots, fusable(members))
        # Spread evenly: n trials in ceil(n/size) bundles of nearly equal size.
        count = math.ceil(len(members) / size)
        bundles.extend(tuple(members[i::count]) for i in range(count))
    return tuple(bundles)


def make_plan(configs: Sequence[TrialConfig], complete: set[str], fuse: int | str, slots: int, force: bool) -> SweepPlan:
    """Skip completed keys (unless ``force``) and bundle the rest."""
    unique = list({c.key: c for c in configs}.values())
    done = frozenset() if force else frozenset(k for k in complete if k in {c.key for c in unique})
    remaining = [c for c in unique if c.key not in done]
    return SweepPlan(tuple(unique), done, make_bundles(remaining, fuse, slots))
