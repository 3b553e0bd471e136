"""What is done, and how many: the one decision whether a trial needs training (:func:`is_done`),
the one count of trials by state (:func:`count_states`), each sweep's record for ``resume`` (its
sidecar file), and the store's status table. No Ray: the CLI's ``status`` reads it cheaply."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from isosweep.errors import UsageError
from isosweep.store import Store, StoredTrial
from isosweep.studies import STUDIES

STATES = ("ok", "failed", "diverged", "damaged", "missing")
"""A planned trial's states, in the order runs and ``status`` show them (``StoredTrial.state``;
``missing``: no row in the store)."""


def is_done(state: StoredTrial | None, force_since: str | None = None) -> bool:
    """Whether a trial needs no training: complete in the store (``StoredTrial.complete``: ok,
    with every table readable), and under ``--force`` finished since the sweep began."""
    if state is None or not state.complete:
        return False
    if force_since is None:
        return True
    return state.finished_at is not None and state.finished_at >= datetime.fromisoformat(force_since)


def done_keys(store: Store, keys: Sequence[str], force_since: str | None = None) -> set[str]:
    """Which of ``keys`` need no training now (:func:`is_done`; the store listed afresh)."""
    states = store.trial_states(keys)
    return {k for k in keys if is_done(states.get(k), force_since)}


def count_states(states: Iterable[str]) -> dict[str, int]:
    """How many of ``states`` are in each state (every one of :data:`STATES`, 0 where none)."""
    counts = dict.fromkeys(STATES, 0)
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    return counts


def status_counts(store: Store, keys: Sequence[str]) -> dict[str, int]:
    """How many of ``keys`` the store holds per state; ``damaged``: recorded ok, but a table of
    theirs is missing or unreadable (``StoredTrial.missing``), so the next run trains them again."""
    states = store.trial_states(keys)
    return count_states(states[k].state if k in states else "missing" for k in keys)


def search_counts(store: Store, sweep: str) -> dict[str, int]:
    """Status counts of the trials a search (its sweep name) recorded."""
    return count_states(row["status"] for row in store.trial_rows(["sweep"]).values() if row["sweep"] == sweep)


# -- each sweep's record: what ``resume`` needs ------------------------------------------------

SIDECAR_SUFFIX = ".isosweep.json"


def sidecar_path(store: Store, sweep: str) -> str:
    return f"{store.root}/ray/{sweep}{SIDECAR_SUFFIX}"


def write_sidecar(store: Store, sweep: str, sidecar: dict[str, Any]) -> None:
    store.fs.makedirs(f"{store.root}/ray", exist_ok=True)
    store.fs.pipe_file(sidecar_path(store, sweep), json.dumps(sidecar).encode())


def known_sweeps(store: Store) -> list[str]:
    # Listed, not globbed: the store's path may hold glob characters.
    return sorted(
        os.path.basename(p)[: -len(SIDECAR_SUFFIX)] for p in store.list_files(f"{store.root}/ray", SIDECAR_SUFFIX)
    )


def read_sidecar(store: Store, sweep: str) -> dict[str, Any]:
    """The record of the sweep named ``sweep``; UsageError naming the known ones where it has none."""
    if sweep not in known_sweeps(store) or not store.fs.exists(f"{store.root}/ray/{sweep}"):
        known = known_sweeps(store)
        raise UsageError(
            f"no sweep named {sweep!r} in store {store.url!r}; "
            + (f"known sweeps: {', '.join(known)}" if known else "it has no sweeps yet (start one with `isosweep run`)")
        )
    with store.fs.open(sidecar_path(store, sweep), "rb") as f:
        sidecar: dict[str, Any] = json.loads(f.read())
    return sidecar


def sweep_counts(store: Store, sweep: str, sidecar: dict[str, Any]) -> tuple[dict[str, int], int]:
    """The status counts of a sweep's planned trials, and how many it planned."""
    if sidecar.get("kind", "bundle") == "search":
        counts = search_counts(store, sweep)
        return counts, sum(counts.values())
    return status_counts(store, sidecar["keys"]), len(sidecar["keys"])


# -- the store's status table -------------------------------------------------------------------


@dataclass(frozen=True)
class StatusRow:
    """One study and budget of the store: its planned trials and their states."""

    study: str
    budget: str
    planned: int
    ok: int
    failed: int
    diverged: int
    damaged: int
    missing: int
    """Planned trials the store holds no row of."""
    extra: int
    """Trials in the store that the study does not plan (other seeds, --where values)."""


@dataclass(frozen=True)
class StoreStatus:
    """What ``isosweep status`` shows: a row per study and budget, the damaged trials (recorded
    ok, a table unreadable or missing) and the unreadable files (as ``store.uri`` names them)."""

    rows: tuple[StatusRow, ...]
    damaged: tuple[StoredTrial, ...]
    unreadable: tuple[str, ...]


def store_status(store: Store, sweep: str | None = None) -> StoreStatus:
    """The store's trials per study and budget; with ``sweep``, only that sweep's planned trials."""
    only: set[str] | None = None
    if sweep is not None:
        sidecar = read_sidecar(store, sweep)
        only = set(sidecar.get("keys") or [])
    states = store.trial_states(sorted(only) if only is not None else None)
    damaged = tuple(sorted((s for s in states.values() if s.missing), key=lambda s: (s.study, s.budget, s.key)))
    present: dict[tuple[str, str], dict[str, str]] = {}
    for key, state in states.items():
        present.setdefault((state.study, state.budget), {})[key] = state.state
    rows = []
    for (study_name, budget), keys in sorted(present.items()):
        study = STUDIES.get(study_name)
        if only is not None:
            planned = {k for k in only if k in keys} if len(present) > 1 else set(only)
        elif study is not None and study.needs_user_data:
            planned = set(keys)  # its trials are known only from the user's data file
        else:
            planned = {c.key for c in study.configs(budget)} if study and budget in study.budgets else set()
        counts = count_states(keys.values())
        rows.append(
            StatusRow(
                study_name,
                budget,
                len(planned),
                counts["ok"],
                counts["failed"],
                counts["diverged"],
                counts["damaged"],
                len(planned - set(keys)),
                len(set(keys) - planned),
            )
        )
    return StoreStatus(tuple(rows), damaged, tuple(store.uri(p) for p in store.corrupt))
