"""The sweep API (``isosweep.run``, ``resume``, ``plan``, ``status``) over a real store, on a real
local Ray started in this process: the toy study at the smoke budget at one lambda (9 trials)."""

from __future__ import annotations

from pathlib import Path

import pytest

import isosweep

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def _own_ray():
    """This module starts its Ray (``isosweep.run`` connects once per process) and stops it."""
    ray.shutdown()
    yield
    ray.shutdown()


def test_plan_run_again_status_resume(tmp_path: Path) -> None:
    store = tmp_path / "store"

    planned = isosweep.plan("toy", budget="smoke", where={"lam": 100}, store=store)
    assert len(planned.planned) == 9 and len(planned.to_run) == 9 and not planned.complete
    assert planned.sweep == "toy-smoke"
    assert not store.exists(), "planning writes nothing"

    first = isosweep.run("toy", budget="smoke", where={"lam": 100}, store=store)
    assert (first.planned, first.already_complete, first.trained) == (9, 0, 9)
    assert (first.ok, first.failed, first.diverged) == (9, 0, 0)
    assert first.summary() is not None, "the toy study has a summary table"

    again = isosweep.run("toy", budget="smoke", where={"lam": 100}, store=store)
    assert (again.planned, again.already_complete, again.trained, again.ok) == (9, 9, 0, 9)

    status = isosweep.status(store)
    assert sum(row.ok for row in status.rows) == 9
    assert [(row.study, row.budget) for row in status.rows] == [("toy", "smoke")]
    assert not status.damaged and not status.unreadable
    (own,) = isosweep.status(store, "toy-smoke").rows
    assert (own.planned, own.ok, own.missing) == (9, 9, 0)

    resumed = isosweep.resume(store, "toy-smoke")
    assert (resumed.planned, resumed.trained, resumed.ok) == (9, 0, 9)
    assert isosweep.resume(store).sweep == "toy-smoke", "the store's only sweep"

    # The same where, as the command line writes it, plans the same trials.
    assert isosweep.plan("toy", budget="smoke", where="lam=100", store=store).planned == planned.planned


def test_bad_input_raises_usage_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with pytest.raises(isosweep.UsageError, match="unknown budget 'huge'"):
        isosweep.run("toy", budget="huge", store=store)
    with pytest.raises(isosweep.UsageError, match="unknown study"):
        isosweep.plan("nope", budget="smoke", store=store)
    with pytest.raises(isosweep.UsageError, match="not an axis"):
        isosweep.plan("toy", budget="smoke", where={"colour": "red"}, store=store)
    with pytest.raises(isosweep.UsageError, match="unknown option 'fusion'"):
        isosweep.plan("toy", budget="smoke", store=store, fusion=2)
    with pytest.raises(isosweep.UsageError, match="cpus_per_trial"):
        isosweep.plan("toy", budget="smoke", store=store, cpus_per_trial=0)
    with pytest.raises(isosweep.UsageError, match="not a plain name"):
        isosweep.plan("toy", budget="smoke", store=store, name="../up")
    with pytest.raises(isosweep.UsageError, match="not a plain name"):
        isosweep.resume(store, "../up")
    assert not store.exists()
