"""The store on a local folder and on fsspec's in-memory file system (one suite, both backends)."""

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from isosweep.errors import UsageError
from isosweep.schema import ESTIMATES, TABLES
from isosweep.store import Store, StoredTrial, result_tables
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.records import TrialResult, TrialStatus


def _result(lam=100.0, status=TrialStatus.OK):
    cfg = TrialConfig(study="toy", budget="smoke", dataset="mix", loss="se", seed=0, latent_dim=2, lam=lam)
    now = datetime.now(timezone.utc)
    return TrialResult(
        cfg,
        status,
        now,
        now,
        scalars={"recon": 0.5, "kl": 3.0, "n_active": 2, "corr_post": 0.9},
        dims=[
            {
                "dim": j,
                "rank": j + 1,
                "active": True,
                "norm_mean": 1.0,
                "norm_sd": 0.1,
                "dprime_mean": 1.0,
                "dprime_sd": 0.1,
                "sigma_inv2_mean": 10.0 / (j + 1),
                "var_ratio": 2.0 - j,
                "kl_mean": 1.0,
            }
            for j in range(2)
        ],
        curves=[{"step": 10, "epoch": 1, "loss": 1.0, "recon": 0.5, "kl": 0.5}],
        points={"log_p_true": np.zeros(3), **{f"log_{e}": np.ones(3) for e in ESTIMATES}},
    )


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path):
    if request.param == "local":
        return Store(str(tmp_path / "store"))
    return Store(f"memory://isosweep-test-{uuid.uuid4().hex}")


def test_rows_follow_the_schema():
    tables = result_tables(_result(), "s", {"git_rev": "abc", "ray_version": "x"})
    for name, table in tables.items():
        assert table.schema.equals(TABLES[name])
    assert tables["trials"].num_rows == 1 and tables["dims"].num_rows == 2 and tables["points"].num_rows == 3
    row = tables["trials"].to_pylist()[0]
    assert row["status"] == "ok" and row["lam"] == 100.0 and row["hidden"] == [128, 64]


def test_a_trial_that_trains_by_iterations_has_no_epochs_column_value():
    cfg = TrialConfig(
        study="mnist",
        budget="smoke",
        dataset="mnist",
        loss="bce",
        seed=0,
        latent_dim=4,
        lam=2000.0,
        iterations=10,
        arch="mlp_sigmoid",
    )
    now = datetime.now(timezone.utc)
    row = result_tables(TrialResult(cfg, TrialStatus.OK, now, now), "s", {})["trials"].to_pylist()[0]
    assert row["epochs"] is None and row["iterations"] == 10 and row["trial_key"] == cfg.key
    assert TrialConfig.from_dict(json.loads(row["config_json"])) == cfg  # the full config, epochs included
    assert result_tables(_result(), "s", {})["trials"].to_pylist()[0]["epochs"] == 500


def test_unknown_scalar_is_refused_rather_than_dropped():
    r = _result()
    r.scalars["not_a_column"] = 1.0
    with pytest.raises(ValueError, match="not_a_column"):
        result_tables(r, "s", {})


def test_write_then_lookup(store):
    ok, failed = _result(100.0), _result(10.0, TrialStatus.FAILED)
    store.write_result(ok, "sweep", {})
    store.write_result(failed, "sweep", {})
    for table in TABLES:
        assert len(store.table_files(table)) == 2
    states = store.trial_states()
    assert states[ok.key].status == "ok" and states[failed.key].status == "failed"
    assert store.completed_keys() == {ok.key}
    assert store.completed_keys([failed.key]) == set()
    with store.fs.open(store.file_path("trials", "toy", ok.key), "rb") as f:
        assert pq.read_table(f).num_rows == 1


def test_rewriting_a_trial_replaces_it(store):
    store.write_result(_result(10.0, TrialStatus.FAILED), "a", {})
    store.write_result(_result(10.0, TrialStatus.OK), "b", {})
    assert len(store.table_files("trials")) == 1
    assert list(store.trial_states().values())[0].status == "ok"


def test_stored_trials_are_typed_rows(store):
    ok = _result()
    store.write_result(ok, "sweep", {})
    (stored,) = store.trial_states().values()
    assert isinstance(stored, StoredTrial) and (stored.key, stored.study, stored.budget) == (ok.key, "toy", "smoke")


def test_a_users_data_file_is_staged_once_under_its_hash(store):
    from isosweep.orchestrator.userdata import UserData, stage

    user = UserData("mine.csv", b"x0,x1\n1,2\n", table=None, latent_dim=1)  # type: ignore[arg-type]
    root = stage(store, user)
    path = f"{store.root}/inputs/{user.data_hash}"
    assert root == (str(Path(store.root, "inputs")) if store.local else store.uri(f"{store.root}/inputs"))
    assert store.fs.cat_file(path) == user.data and store.fs.ls(f"{store.root}/inputs", detail=False) == [path]
    store.before_commit = lambda p: pytest.fail(f"{p} was written again")
    assert stage(store, user) == root


def test_local_writes_leave_no_temporary_files(tmp_path):
    store = Store(str(tmp_path / "s"))
    store.write_result(_result(), "s", {})
    names = [p.name for p in (tmp_path / "s").rglob("*") if p.is_file()]
    assert names and all(n.endswith(".parquet") and not n.startswith(".") for n in names)


def test_a_file_is_not_a_store(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        Store(str(f)).check_usable(for_writing=True)
