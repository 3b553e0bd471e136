"""Today's trainers give the results an earlier release stored: each ok trial of the legacy store
(``tests/fixtures/legacy-store``, written by isosweep 0.1.0 through Ray; see
``tests/test_legacy_store.py``) is trained again from its recorded configuration, in process, and
its scalars and per-dimension rows must equal the stored ones within ``RTOL``. So a change that
moves any result (training, measurement, data draws) fails here, and must raise
``SCIENCE_VERSION`` instead. The mutation check proves the tolerance is tight enough for that.
"""

from __future__ import annotations

import pytest
from legacy_retrain import (
    MUTATIONS,
    RTOL,
    config_of,
    differences,
    float_differences,
    mutated,
    ok_trials,
    retrain,
    trial_id,
)

TRIALS = ok_trials()


def _retrain_or_skip(cfg):
    try:
        return retrain(cfg)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("row", TRIALS, ids=[trial_id(r) for r in TRIALS])
def test_training_again_gives_the_stored_results(row):
    cfg = config_of(row)
    assert cfg.key == row["trial_key"]  # the recorded configuration still names the same trial
    new = _retrain_or_skip(cfg)
    assert new.status == "ok"
    beyond = {k: d for k, d in differences(new, row).items() if d > RTOL}
    assert not beyond, beyond


def _first_of_each_study():
    firsts: dict[str, dict] = {}
    for row in TRIALS:
        firsts.setdefault(row["study"], row)
    return list(firsts.values())


FIRSTS = _first_of_each_study()


@pytest.mark.parametrize("mutation", MUTATIONS)
@pytest.mark.parametrize("row", FIRSTS, ids=[trial_id(r) for r in FIRSTS])
def test_each_mutation_fails_the_comparison(row, mutation):
    """The smallest real change of a trial moves its results beyond ``RTOL``: the float results
    alone, not only a count such as ``steps`` that trivially tells the runs apart."""
    new = _retrain_or_skip(mutated(config_of(row), mutation))
    floats = float_differences(new, row)
    assert floats and max(floats.values()) > RTOL, (mutation, max(floats.items(), key=lambda kv: kv[1], default=None))


def test_mutations_are_real_changes():
    """Each mutation changes the trial's key: it is a change of the science, not of bookkeeping."""
    cfg = config_of(TRIALS[0])
    assert len({cfg.key, *(mutated(cfg, m).key for m in MUTATIONS)}) == 1 + len(MUTATIONS)
