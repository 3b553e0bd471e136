"""Search beyond the grid: Optuna's TPE over (lambda1, lambda2) of one anomaly data set.

A search evaluates points (lambda1, lambda2) drawn log-uniformly from a range; each point trains
the data set's anomaly trial at seeds 0..S-1, and its objective is the mean validation F1 of those
trials (``val_f1``: the training half's held-out normal rows and its anomalies, never the test
half; ``isosweep.trainers.anomaly``). The trials are ordinary trials of study ``anomaly``: their keys come
from their content, they land in the store like any other, and their test F1 is reported beside
the grid's.

The store is the searcher's memory. Before a search starts, every point of the data set and budget
whose S seeds are all complete in the store (grid points included) is told to the sampler as an
evaluated trial, and a point of this search left half-done by an interruption is queued to be
finished first. So a search that is run again, or resumed after a crash, keeps its history and
never trains a finished trial twice; ``--num-samples`` counts the points this search (its sweep
name) has evaluated. This module builds that history and the Optuna study; ``isosweep.orchestrator.launch`` runs it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from isosweep.errors import UsageError
from isosweep.orchestrator.status import is_done
from isosweep.store import Store
from isosweep.studies import STUDIES, Study
from isosweep.trainers.config import TrialConfig

SEARCHERS = ("optuna",)
OBJECTIVE = "search_val_f1"
"""The metric the searcher maximises: mean validation F1 over the point's seeds."""
DEFAULT_RANGE = (1000.0, 100000.0)
"""Default (low, high) of both lambdas: the paper's grid (6000-30000) and a factor 5-6 around it."""
SEARCH_AXES = ("lam1", "lam2")
HISTORY_COLUMNS = ("dataset", "lam1", "lam2", "seed", "sweep", "val_f1")


@dataclass(frozen=True)
class SearchSpec:
    """One search: which data set and budget, the range, the seeds per point, how many points."""

    sweep: str
    dataset: str
    budget: str
    seeds: tuple[int, ...]
    num_samples: int
    low: float = DEFAULT_RANGE[0]
    high: float = DEFAULT_RANGE[1]

    def sampler_seed(self, history_size: int) -> int:
        """The TPE sampler's seed: fixed by the sweep's name and the size of the history it starts
        from, so a search is repeatable, and a search continued later does not draw the random
        start-up points it drew before (they are complete, so they would teach it nothing)."""
        return int.from_bytes(hashlib.sha256(f"{self.sweep}:{history_size}".encode()).digest()[:4], "big")

    def contains(self, lam1: float, lam2: float) -> bool:
        return all(self.low <= v <= self.high for v in (lam1, lam2))


def parse_range(text: str | None) -> tuple[float, float]:
    """``LOW:HIGH`` (positive numbers, LOW < HIGH) into a pair; the default range if None."""
    if text is None:
        return DEFAULT_RANGE
    low_text, sep, high_text = text.partition(":")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        low = high = float("nan")
    if not sep or not (0 < low < high < math.inf):
        raise UsageError(f"--lam-range {text!r}: write LOW:HIGH with 0 < LOW < HIGH, e.g. --lam-range 1000:100000")
    return low, high


def check_search(study: Study, searcher: str, where: Mapping[str, tuple[Any, ...]], num_samples: int | None) -> str:
    """The data set a search runs on; UsageError unless the request is a valid search."""
    if searcher not in SEARCHERS:
        raise UsageError(f"--search {searcher!r}: the searcher is one of {', '.join(SEARCHERS)}")
    if not study.searchable:
        searchable = ", ".join(s.name for s in STUDIES.values() if s.searchable)
        raise UsageError(
            f"--search runs on a study with a (lambda1, lambda2) grid ({searchable}), not {study.name!r}; "
            "write e.g. isosweep run anomaly --search optuna --where dataset=thyroid --num-samples 20"
        )
    if num_samples is None:
        raise UsageError("--search needs --num-samples N: the number of (lambda1, lambda2) points to evaluate")
    fixed = [k for k in where if k in SEARCH_AXES or k == "seed"]
    if fixed:
        raise UsageError(
            f"--where {fixed[0]}=... cannot be set in a search: the searcher picks lambda1 and lambda2, "
            "and --seeds N sets the seeds 0..N-1 of every point"
        )
    datasets = where.get("dataset", ())
    if len(datasets) != 1:
        axis = study.axis("dataset")
        raise UsageError(
            "a search runs on one data set: add --where dataset=NAME "
            f"(one of {', '.join(map(str, axis.values if axis is not None else ()))})"
        )
    return str(datasets[0])


def template_configs(study: Study, spec: SearchSpec, where: Mapping[str, tuple[Any, ...]]) -> list[TrialConfig]:
    """The trials of one point, one per seed, at a placeholder (low, low); see :func:`at_point`."""
    point = {**where, "dataset": (spec.dataset,), "lam1": (spec.low,), "lam2": (spec.low,), "seed": spec.seeds}
    return study.configs(spec.budget, where=point)


def at_point(templates: Sequence[TrialConfig], lam1: float, lam2: float) -> list[TrialConfig]:
    """The point's trials: the templates with the searcher's (lambda1, lambda2)."""
    return [TrialConfig.from_dict({**t.to_dict(), "lam1": lam1, "lam2": lam2}) for t in templates]


@dataclass(frozen=True)
class SearchHistory:
    """What the store already knows of a search's space."""

    evaluated: tuple[tuple[float, float, float], ...]
    """(lambda1, lambda2, mean validation F1) of every point whose seeds are all complete."""
    own_done: int
    """Points of ``evaluated`` that this search (its sweep name) evaluated."""
    unfinished: tuple[tuple[float, float], ...]
    """Points this search started whose seeds are not all complete: queued to be finished first."""


def point_objective(val_f1s: Iterable[float | None]) -> float:
    """The objective of a point: the mean validation F1 of its seeds; a seed with none (its trial
    failed or diverged) counts as 0, so the searcher learns to avoid the region."""
    values = [0.0 if v is None or math.isnan(v) else float(v) for v in val_f1s]
    return sum(values) / len(values) if values else 0.0


def read_history(store: Store, study: Study, spec: SearchSpec, where: Mapping[str, tuple[Any, ...]]) -> SearchHistory:
    """The points of the data set and budget that the store holds (any sweep) inside the range.

    A point counts as evaluated when each of the spec's seeds has an ok trial there whose settings
    equal this search's (architecture, epochs, ...: the trial key at that point); failed and
    diverged trials are retried by the search, as by any run.
    """
    templates = template_configs(study, spec, where)
    rows = store.trial_rows(HISTORY_COLUMNS)
    by_point: dict[tuple[float, float], dict[str, dict[str, Any]]] = {}
    for key, row in rows.items():
        if row["study"] != study.name or row["budget"] != spec.budget or row["dataset"] != spec.dataset:
            continue
        if row["lam1"] is None or row["lam2"] is None or not spec.contains(row["lam1"], row["lam2"]):
            continue
        by_point.setdefault((row["lam1"], row["lam2"]), {})[key] = row
    states = store.trial_states([key for found in by_point.values() for key in found])
    evaluated, unfinished, own = [], [], 0
    for (lam1, lam2), found in sorted(by_point.items()):
        members = at_point(templates, lam1, lam2)
        ok = [found[c.key] for c in members if c.key in found and is_done(states.get(c.key))]
        ours = any(r["sweep"] == spec.sweep for r in found.values() if r["trial_key"] in {c.key for c in members})
        if len(ok) == len(members):
            evaluated.append((lam1, lam2, point_objective(r["val_f1"] for r in ok)))
            own += int(ours)
        elif ours:
            unfinished.append((lam1, lam2))
    return SearchHistory(tuple(evaluated), own, tuple(unfinished))


def build_optuna_study(spec: SearchSpec, history: SearchHistory) -> Any:
    """An in-memory Optuna study (TPE sampler, maximise) holding the history: evaluated points as
    complete trials, unfinished ones queued. The Tune searcher loads it by name."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = search_space(spec)
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        study_name=spec.sweep,
        sampler=optuna.samplers.TPESampler(seed=spec.sampler_seed(len(history.evaluated) + len(history.unfinished))),
        direction="maximize",
    )
    for lam1, lam2, value in history.evaluated:
        study.add_trial(
            optuna.trial.create_trial(params={"lam1": lam1, "lam2": lam2}, distributions=space, value=value)
        )
    for lam1, lam2 in history.unfinished:
        study.enqueue_trial({"lam1": lam1, "lam2": lam2})
    return study


def search_space(spec: SearchSpec) -> dict[str, Any]:
    """lambda1 and lambda2, each log-uniform on [low, high]."""
    import optuna

    return {name: optuna.distributions.FloatDistribution(spec.low, spec.high, log=True) for name in SEARCH_AXES}
