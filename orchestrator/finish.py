"""What a sweep does when it ends, whichever way (done, stopped, failed) and whichever executor ran
it: merge its per-trial files, clear its stale claims, and give a ``failed`` row to each member of a
bundle that was given up on. No Ray here."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

from isosweep.errors import NoSpaceError, first_line, no_space, no_space_path
from isosweep.orchestrator.claims import Claims
from isosweep.orchestrator.compact import compact_sweep
from isosweep.orchestrator.faults import compact_kill_point
from isosweep.store import UNREADABLE_FIX, Store
from isosweep.trainers.config import TrialConfig


def clear_stale_claims(store: Store, keys: Sequence[str] | None) -> None:
    """Remove the dead or expired claims (a stopped or killed run's) of the sweep's keys (every
    key where None) when the sweep ends, so that none outlives the run after the one that left it.
    A failure is only reported: a stale claim delays a later run by one lease at most."""
    try:
        Claims(store).clear_stale(keys)
    except Exception as exc:
        print(
            f"isosweep: warning: clearing stale claims failed ({type(exc).__name__}: {first_line(exc)}); "
            "they expire by themselves",
            file=sys.stderr,
        )


def compact_after_sweep(store: Store, keys: Sequence[str] | None, sweep: str, enabled: bool = True) -> None:
    """Merge the per-trial files of the sweep's trials (``keys``; every per-trial file where None)
    into the store's compacted files, as every sweep does when it ends or is interrupted cleanly.
    A failure here loses nothing (each trial is whole in its own files): it is reported, not raised."""
    if not enabled:
        return
    start = time.perf_counter()
    try:
        report = compact_sweep(store, keys, kill=compact_kill_point)
    except Exception as exc:
        if no_space(exc):
            raise NoSpaceError(no_space_path(exc) or store.url) from None
        print(
            f"isosweep: warning: merging the sweep's files failed ({type(exc).__name__}: {first_line(exc)}); its trials "
            f"are whole in their own files: run `isosweep compact --store {store.url}` to merge them",
            file=sys.stderr,
        )
        return
    if report.written_files:
        print(
            f"{sweep}: merged {report.merged_files} per-trial and compacted file(s) into {report.written_files} "
            f"in {time.perf_counter() - start:.1f}s",
            flush=True,
        )
    if report.skipped_corrupt:
        print(
            f"isosweep: warning: {len(report.skipped_corrupt)} unreadable file(s) left unmerged: "
            f"{', '.join(store.uri(p) for p in report.skipped_corrupt)}; {UNREADABLE_FIX} "
            "(`isosweep status` lists them)",
            file=sys.stderr,
        )


def record_given_up(
    store: Store, members: Iterable[TrialConfig], sweep: str, error: str, provenance: dict[str, Any]
) -> None:
    """A ``failed`` row for each member of a bundle given up on (after its retries) that the store
    holds no row of, so that nothing silently disappears and the next run retries them."""
    # The trainers' run module imports torch: only where a bundle was given up on.
    from isosweep.trainers.run import failed_result

    members = list(members)
    states = store.trial_states([cfg.key for cfg in members])
    for cfg in members:
        if cfg.key not in states:
            store.write_result(failed_result(cfg, error), sweep, provenance)
