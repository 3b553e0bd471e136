"""The study registry: every study declared as data (axes, fixed settings, budgets).

A study crosses its axes into trial configurations; a budget fixes the training settings and is
part of each trial's identity. Extending a study (more seeds, more lambdas through ``--where``)
only adds new trial keys, since keys depend on content, never on grid position.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from orchestrator.errors import UsageError
from trainers.config import LR_SCHEDULES, REDUCTIONS, TrialConfig

TOY_LAMBDAS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)


@dataclass(frozen=True)
class Budget:
    """Training settings of one named budget."""

    name: str
    settings: Mapping[str, Any]
    """TrialConfig fields this budget fixes (epochs, n_train, n_eval, batch_size, ...)."""
    seeds: int = 1
    """Number of seeds run when ``--seeds`` is not given."""
    note: str = ""


@dataclass(frozen=True)
class Axis:
    """One axis of a study's grid: a TrialConfig field and its values."""

    name: str
    values: tuple[Any, ...]
    kind: type = str
    """Type of the values: ``str`` axes accept only known values; ``float`` axes any positive one."""


# Settings that are not axes but that a user may set per run with --where (recorded per trial).
SETTINGS: dict[str, tuple[Any, ...]] = {"reduction": REDUCTIONS, "lr_schedule": LR_SCHEDULES}


@dataclass(frozen=True)
class Study:
    """A named ablation: the cross product of its axes times seeds, at one budget."""

    name: str
    description: str
    axes: tuple[Axis, ...]
    fixed: Mapping[str, Any]
    budgets: Mapping[str, Budget]
    tags: Sequence[str] = field(default_factory=tuple)

    def axis(self, name: str) -> Axis | None:
        return next((a for a in self.axes if a.name == name), None)

    def budget(self, name: str) -> Budget:
        if name not in self.budgets:
            raise UsageError(f"unknown budget {name!r} for study {self.name!r}; choose one of: {', '.join(self.budgets)}")
        return self.budgets[name]

    def size(self) -> int:
        """Trials per seed."""
        n = 1
        for a in self.axes:
            n *= len(a.values)
        return n

    def configs(self, budget: str, seeds: int | None = None, where: Mapping[str, tuple[Any, ...]] | None = None) -> list[TrialConfig]:
        """Every trial of the study at ``budget``, restricted or extended by ``where``."""
        b = self.budget(budget)
        where = dict(where or {})
        seed_values = where.pop("seed", None) or tuple(range(seeds if seeds is not None else b.seeds))
        settings = {k: where.pop(k)[0] for k in list(where) if k in SETTINGS}
        axes = [(a.name, where.get(a.name, a.values)) for a in self.axes]
        out = []
        for combo in itertools.product(*(values for _, values in axes), seed_values):
            point = dict(zip([name for name, _ in axes] + ["seed"], combo))
            out.append(TrialConfig(study=self.name, budget=b.name, **self.fixed, **b.settings, **settings, **point))
        return out


TOY_BUDGETS = {
    b.name: b
    for b in (
        Budget("smoke", {"epochs": 2, "n_train": 512, "n_eval": 256, "batch_size": 128},
               note="seconds per trial; for tests"),
        Budget("quick", {"epochs": 90, "n_train": 50_000, "n_eval": 10_000, "batch_size": 128},
               note="60 epochs at lr 1e-3 then 30 at 1e-4; about a minute per trial on one core"),
        Budget("paper", {"epochs": 500, "n_train": 50_000, "n_eval": 10_000, "batch_size": 128},
               note="the paper's budget (section 5.1)"),
    )
}

_TOY_FIXED = {"form": "conventional", "hidden": (128, 64), "activation": "tanh", "lr": 1e-3}

STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            "toy",
            "toy ablation: 3 data sets x 3 losses x 10 lambdas (METHOD.md 5.1)",
            (Axis("dataset", ("norm", "ramp", "mix")), Axis("loss", ("se", "dconv", "uconv")),
             Axis("lam", TOY_LAMBDAS, float)),
            {**_TOY_FIXED, "latent_dim": 3},
            TOY_BUDGETS,
        ),
        Study(
            "toy-latent5",
            "toy extra variant: mix, se, lambda 100, latent size 5 (paper table 4)",
            (Axis("dataset", ("mix",)), Axis("loss", ("se",)), Axis("lam", (100.0,), float)),
            {**_TOY_FIXED, "latent_dim": 5},
            TOY_BUDGETS,
        ),
    )
}


def get_study(name: str) -> Study:
    if name not in STUDIES:
        raise UsageError(f"unknown study {name!r}; choose one of: {', '.join(STUDIES)} (see `isosweep studies`)")
    return STUDIES[name]


def parse_where(study: Study, text: str | None) -> dict[str, tuple[Any, ...]]:
    """Parse ``K=V,K=V|V`` into typed values, checking keys and values against the study."""
    out: dict[str, tuple[Any, ...]] = {}
    if not text:
        return out
    for part in text.split(","):
        if "=" not in part:
            raise UsageError(f"--where part {part!r} is not K=V; write e.g. --where 'dataset=mix,lam=10|100'")
        key, raw = (s.strip() for s in part.split("=", 1))
        values = [v.strip() for v in raw.split("|") if v.strip()]
        if not values:
            raise UsageError(f"--where {key}= has no value; write e.g. --where '{key}=VALUE'")
        axis = study.axis(key)
        if key == "seed":
            try:
                seeds = tuple(int(v) for v in values)
            except ValueError:
                raise UsageError(f"--where seed={raw!r}: seeds are non-negative integers") from None
            if any(s < 0 for s in seeds):
                raise UsageError(f"--where seed={raw!r}: seeds are non-negative integers")
            out[key] = seeds
        elif key in SETTINGS:
            if len(values) != 1 or values[0] not in SETTINGS[key]:
                raise UsageError(f"--where {key}={raw!r}: choose one of {', '.join(SETTINGS[key])}")
            out[key] = (values[0],)
        elif axis is None:
            known = [a.name for a in study.axes] + ["seed", *SETTINGS]
            raise UsageError(f"--where key {key!r} is not an axis of study {study.name!r}; use one of: {', '.join(known)}")
        elif axis.kind is float:
            try:
                numbers = tuple(float(v) for v in values)
            except ValueError:
                raise UsageError(f"--where {key}={raw!r}: {key} takes numbers, e.g. {key}=10|100") from None
            if not all(x > 0 and x < float("inf") for x in numbers):
                raise UsageError(f"--where {key}={raw!r}: {key} must be a positive finite number")
            out[key] = numbers
        else:
            unknown = [v for v in values if v not in axis.values]
            if unknown:
                raise UsageError(f"--where {key}={unknown[0]!r} is not a value of study {study.name!r}; choose from: {', '.join(map(str, axis.values))}")
            out[key] = tuple(values)
    return out
