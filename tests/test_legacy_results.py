"""Today's trainers give the results an earlier release stored: each ok trial of the legacy store
(``tests/fixtures/legacy-store``, written by isosweep 0.1.0 through Ray; see
``tests/test_legacy_store.py``) is trained again from its recorded configuration, in process, and
its scalars and per-dimension rows must equal the stored ones. So a change that moves any result
(training, measurement, data draws) fails here, and must raise ``SCIENCE_VERSION`` instead.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.kinds import kind_of
from isosweep.trainers.run import run_trial

STORE = Path(__file__).resolve().parent / "fixtures" / "legacy-store"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Columns that say when, where and how long, not what: they differ on every run.
NOT_RESULTS = {"wall_s", "started_at", "finished_at", "hostname", "device", "git_rev", "isosweep_version",
               "torch_version", "ray_version", "run_id", "sweep"}
RTOL = 1e-6


def _table(name: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted((STORE / name).rglob("*.parquet"))],
                            promote_options="default")


TRIALS = [row for row in _table("trials").to_pylist() if row["status"] == "ok"]
DIMS = _table("dims").to_pylist()


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-9)
    return a == b


def _data_root(cfg: TrialConfig) -> str | None:
    if cfg.data_hash is not None:
        return str(STORE / "inputs")  # where `isosweep run custom` staged the file
    if kind_of(cfg).name == "mlp":
        return None
    if not DATA.is_dir():
        pytest.skip(f"real data sets not present at {DATA}")
    return str(DATA)


@pytest.mark.parametrize("row", TRIALS, ids=[f"{r['study']}-{r['dataset']}-{r['trial_key']}" for r in TRIALS])
def test_training_again_gives_the_stored_results(row):
    cfg = TrialConfig.from_dict(json.loads(row["config_json"]))
    assert cfg.key == row["trial_key"]  # the recorded configuration still names the same trial
    result = run_trial(cfg, data_root=_data_root(cfg))
    assert result.status.value == "ok"
    differ = {k: (v, row[k]) for k, v in result.scalars.items()
              if k not in NOT_RESULTS and k in row and not _close(v, row[k])}
    assert not differ, differ
    stored = sorted((d for d in DIMS if d["trial_key"] == row["trial_key"] and d["run_id"] == row["run_id"]),
                    key=lambda d: d["dim"])
    assert len(stored) == len(result.dims)
    for new, old in zip(sorted(result.dims, key=lambda d: d["dim"]), stored):
        differ = {k: (v, old[k]) for k, v in new.items() if not _close(v, old[k])}
        assert not differ, (new["dim"], differ)
