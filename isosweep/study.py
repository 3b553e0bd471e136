"""A study as data: its axes, budgets and fixed settings, and how it crosses them into trial
configurations (``Study.configs``). The registry of the paper's studies is ``isosweep.studies``.

A study crosses its axes into trial configurations; a budget fixes the training settings and is
part of each trial's identity. Extending a study (more seeds, more lambdas through ``--where``)
only adds new trial keys, since keys depend on content, never on grid position.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from isosweep.errors import UsageError
from isosweep.schema import TRIALS
from isosweep.trainers.config import LR_SCHEDULES, REDUCTIONS, TrialConfig
from isosweep.trainers.data.errors import DataError
from isosweep.trainers.kinds import DataCheck
from isosweep.trainers.kinds import check_data as check_kind_data


@dataclass(frozen=True)
class Budget:
    """Training settings of one named budget."""

    name: str
    settings: Mapping[str, Any]
    """TrialConfig fields this budget fixes (epochs, n_train, n_eval, batch_size, ...)."""
    seeds: int = 1
    """Number of seeds run when ``--seeds`` is not given."""
    note: str = ""
    per_value: Mapping[str, Mapping[Any, Mapping[str, Any]]] = field(default_factory=dict)
    """Settings that depend on an axis value at this budget, e.g. ``{"dataset": {"thyroid": {"epochs": 4000}}}``."""
    axes: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    """Axis values this budget uses instead of the study's (e.g. a smaller grid for ``smoke``)."""


@dataclass(frozen=True)
class Axis:
    """One axis of a study's grid: a TrialConfig field and its values."""

    name: str
    values: tuple[Any, ...]
    kind: type = str
    """Type of the values: ``str`` axes accept only known values; ``float`` axes any positive one."""
    in_config: bool = True
    """Whether the values are those of the TrialConfig field ``name``. False: the values only name
    settings that the study's ``per_value`` gives them (a variant that moves several fields
    together, e.g. latent size, width and lambda), so that keys stay content-based."""


# Settings that are not axes but that a user may set per run with --where (recorded per trial):
# the allowed values, or ``int`` for a positive whole number. Several values cross like an axis.
Setting = tuple[Any, ...] | type


def int_setting_max(key: str) -> int:
    """The largest value of the whole-number setting ``key`` that its store column holds (a signed
    integer of the width ``isosweep.schema.TRIALS`` gives it)."""
    return 2 ** (TRIALS.field(key).type.bit_width - 1) - 1


SETTINGS: dict[str, Setting] = {"reduction": REDUCTIONS, "lr_schedule": LR_SCHEDULES}


@dataclass(frozen=True)
class Study:
    """A named ablation: the cross product of its axes times seeds, at one budget."""

    name: str
    description: str
    axes: tuple[Axis, ...]
    fixed: Mapping[str, Any]
    budgets: Mapping[str, Budget]
    summary: str | None = None
    """Named query (``analysis/sql/<summary>.sql``) that summarises the study: printed when a run
    ends, and the query whose SQL selects this study's trials (``studies.summary`` in the SQL)."""
    summary_hide: tuple[str, ...] = ()
    """Columns of the summary left out when a run prints it (constant over the study's trials)."""
    report: str | None = None
    """Name of the report's section set (``isosweep.analysis.sections.SECTION_SETS``)."""
    companions: tuple[str, ...] = ()
    """Studies whose trials this study's report shows beside its own (``toy`` shows ``toy-latent5``)."""
    check_data: DataCheck = check_kind_data
    """Checks the files the trials read before anything is planned or started (default: each
    trial kind's own check, ``isosweep.trainers.kinds``); DataError naming the file otherwise."""
    needs_user_data: bool = False
    """The study runs on a user's data file (``isosweep run STUDY --data FILE``): its trials are
    known only from that file, and the file's fields come through ``configs(..., inputs=...)``."""
    searchable: bool = False
    """``--search`` may explore its (lambda1, lambda2) beyond the grid (``isosweep.orchestrator.search``)."""
    per_value: Mapping[str, Mapping[Any, Mapping[str, Any]]] = field(default_factory=dict)
    """Settings that depend on an axis value, e.g. each data set's architecture:
    ``{"dataset": {"thyroid": {"hidden": (60, 30), ...}}}``."""
    records_as: str | None = None
    """Record (and key) the trials as this study: a study that picks points of a larger one
    (``anomaly-paper`` of ``anomaly``) then shares its trials, and neither runs them twice."""
    tie_lambdas: bool = False
    """Decomposed-form trials weigh both terms with the point's ``lam``: lam1 = lam2 = lam (CelebA,
    docs/method.md 2); conventional ones keep ``lam``."""
    settings: Mapping[str, Setting] = field(default_factory=dict)
    """Settings of this study's trials, beyond ``SETTINGS``, that ``--where`` may set."""

    def all_settings(self) -> dict[str, Setting]:
        """Every setting ``--where`` may set on this study's trials."""
        return {**SETTINGS, **self.settings}

    def axis(self, name: str) -> Axis | None:
        return next((a for a in self.axes if a.name == name), None)

    def axis_values(self, axis: Axis, budget: str | None = None) -> tuple[Any, ...]:
        """The axis's values at ``budget`` (a budget may use fewer)."""
        if budget is not None and budget in self.budgets:
            return tuple(self.budgets[budget].axes.get(axis.name, axis.values))
        return axis.values

    def budget(self, name: str) -> Budget:
        if name not in self.budgets:
            raise UsageError(
                f"unknown budget {name!r} for study {self.name!r}; choose one of: {', '.join(self.budgets)}"
            )
        return self.budgets[name]

    def size(self, budget: str | None = None) -> int:
        """Trials per seed (at ``budget``, where a budget uses fewer axis values)."""
        n = 1
        for a in self.axes:
            n *= len(self.axis_values(a, budget))
        return n

    def configs(
        self,
        budget: str,
        seeds: int | None = None,
        where: Mapping[str, tuple[Any, ...]] | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> list[TrialConfig]:
        """Every trial of the study at ``budget``, restricted or extended by ``where``; ``inputs``
        are the fields that come from a user's data file (studies that need one)."""
        b = self.budget(budget)
        if self.needs_user_data and inputs is None:
            raise UsageError(
                f"study {self.name!r} runs on your own data: pass --data FILE (a CSV or Parquet file "
                "of feature columns)"
            )
        where = dict(where or {})
        seed_values = where.pop("seed", None) or tuple(range(seeds if seeds is not None else b.seeds))
        known = self.all_settings()
        settings = [(k, where.pop(k)) for k in list(where) if k in known]
        axes = [(a.name, where.get(a.name, self.axis_values(a, budget))) for a in self.axes]
        config_names = {a.name for a in self.axes if a.in_config} | {"seed"}
        out = []
        for combo in itertools.product(
            *(values for _, values in axes), *(values for _, values in settings), seed_values
        ):
            point = dict(zip([name for name, _ in axes], combo))
            chosen = dict(zip([name for name, _ in settings], combo[len(axes) :]))
            point["seed"] = combo[-1]
            fields = {**self.fixed, **b.settings}
            for table in (self.per_value, b.per_value):
                for axis_name, by_value in table.items():
                    fields.update(by_value.get(point.get(axis_name), {}))
            fields.update(chosen)
            fields.update(inputs or {})
            fields.update({k: v for k, v in point.items() if k in config_names})
            if self.tie_lambdas and fields.get("form") == "decomposed":
                fields["lam1"] = fields["lam2"] = fields.pop("lam")
            try:
                out.append(TrialConfig(study=self.records_as or self.name, budget=b.name, **fields))
            except ValueError as exc:
                # A combination of --where settings that no trial can have (split=paper needs
                # snapshot_rule=last): say which, before anything is planned.
                raise UsageError(f"--where gives a trial that cannot run: {exc}") from None
        return out


def check_inputs(study: Study, configs: Sequence[TrialConfig], root: str | None) -> None:
    """Run the study's data check before anything is planned or started; UsageError (one line
    naming the file) when a file the trials read is missing or malformed."""
    try:
        study.check_data(configs, root)
    except DataError as exc:
        raise UsageError(str(exc)) from None
