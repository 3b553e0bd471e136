"""The local executor (``--executor local``): the same sweeps as on Ray give the same stores (the
same keys, the same metrics in float64); it runs, resumes and counts where Ray, DuckDB and Optuna
are not installed; a run killed mid-sweep and finished by ``run`` or ``resume`` trains each trial
exactly once; the options it cannot honour are refused in one line."""

from __future__ import annotations

import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from anomaly_files import write_anomaly_files
from test_crash_safety import SWEEP, assert_exactly_once, finished_runs

import isosweep
from helpers import cli_env, one_line
from helpers import isosweep as isosweep_cli

WITHOUT = Path(__file__).parent.parent / "without_modules.py"
"""Runs ``python -m isosweep`` with the named modules not importable, as where they are not installed."""

VARIES = {"run_id", "sweep", "wall_s", "started_at", "finished_at", "hostname", "git_rev", "ray_version", "error"}
"""Columns that say when, where and by what a trial ran, not what it computed."""

ORDER = {"trials": ["trial_key"], "dims": ["trial_key", "dim"], "curves": ["trial_key", "step"]}


def _table(store: str, table: str) -> pd.DataFrame:
    frame = getattr(isosweep, table)(store)
    return (
        frame.drop(columns=[c for c in frame.columns if c in VARIES]).sort_values(ORDER[table]).reset_index(drop=True)
    )


def assert_same_results(local: str, ray: str) -> None:
    """Every trial's rows in both stores: the same keys, every other value equal (floats in float64)."""
    for table in ORDER:
        a, b = _table(local, table), _table(ray, table)
        assert list(a.columns) == list(b.columns) and len(a) == len(b) > 0, table
        assert a["trial_key"].tolist() == b["trial_key"].tolist(), table
        for column in a.columns:
            for x, y in zip(a[column].tolist(), b[column].tolist()):
                assert _equal(x, y), f"{table}.{column}: {x!r} (local) != {y!r} (ray)"


def _equal(x: object, y: object) -> bool:
    """Values equal exactly: floats as float64 (NaN equals NaN), lists and arrays element by element."""
    if isinstance(x, (list, tuple, np.ndarray)) or isinstance(y, (list, tuple, np.ndarray)):
        xs, ys = list(np.asarray(x, dtype=object).ravel()), list(np.asarray(y, dtype=object).ravel())
        return len(xs) == len(ys) and all(_equal(p, q) for p, q in zip(xs, ys))
    if isinstance(x, float) and isinstance(y, float):
        return (math.isnan(x) and math.isnan(y)) or float(np.float64(x)) == float(np.float64(y))
    return bool(x == y)


def test_the_local_executor_writes_the_trials_that_ray_wrote(tmp_path, smoke_store):
    """The whole toy study at the smoke budget: on Ray (``smoke_store``, two bundles of 45) and here
    (one bundle of 90, one thread): the fused members' results do not depend on their bundle."""
    local = str(tmp_path / "local")
    result = isosweep.run("toy", budget="smoke", store=local, executor="local", cpus_per_trial=1)
    assert result.planned == result.trained == result.ok == 90
    assert_same_results(local, str(smoke_store))
    assert isosweep.trials(local)["ray_version"].isna().all()
    assert isosweep.trials(str(smoke_store))["ray_version"].notna().all()


@pytest.mark.slow  # a Ray sweep and a local one; the toy study's comparison above is the fast tier's
def test_the_local_and_the_ray_executor_write_the_same_anomaly_trials(tmp_path):
    # The same bundles and threads on both: fused units of 3, one thread each.
    options = {
        "fuse": "3",
        "cpus_per_trial": 1,
        "data_root": str(write_anomaly_files(tmp_path / "data")),
        "where": {"dataset": "thyroid|arrhythmia"},
    }
    local, ray = str(tmp_path / "local"), str(tmp_path / "ray")
    on_local = isosweep.run("anomaly", budget="smoke", store=local, executor="local", **options)
    on_ray = isosweep.run("anomaly", budget="smoke", store=ray, **options)
    assert on_local.planned == on_ray.planned == on_local.ok == on_ray.ok == on_local.trained > 0
    assert_same_results(local, ray)


def without(modules: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m isosweep ARGS`` where ``modules`` (comma-separated) cannot be imported."""
    return subprocess.run(
        [sys.executable, str(WITHOUT), modules, *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=timeout,
    )


def test_without_ray_duckdb_or_optuna_the_local_executor_runs_resumes_and_counts(tmp_path):
    store = str(tmp_path / "store")
    sweep = ["run", "toy", "--budget", "smoke", "--where", "lam=100", "--store", store]
    hidden = "ray,duckdb,optuna"

    ran = without(hidden, *sweep, "--executor", "local")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "toy-smoke: ok 9, failed 0, diverged 0, missing 0 of 9" in ran.stdout
    assert "the summary table needs duckdb" in ran.stdout

    resumed = without(hidden, "resume", "toy-smoke", "--store", store)  # the executor the sweep ran with
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "toy-smoke: ok 9, failed 0, diverged 0, missing 0 of 9" in resumed.stdout
    assert "[1/" not in resumed.stdout  # nothing trained again

    status = without(hidden, "status", "--store", store)
    assert status.returncode == 0 and "toy    smoke   90       9" in status.stdout

    # What needs a missing module says so in one line, exit 2, and writes nothing.
    for args, needs in [
        (["query", "select 1", "--store", store], "isosweep query needs duckdb"),
        ([*sweep, "--where", "seed=1"], "ray is not installed here"),
    ]:
        assert_refused(without(hidden, *args), needs)
    assert len(isosweep.trials(store)) == 9


def assert_refused(proc: subprocess.CompletedProcess, needs: str) -> None:
    """One line on stderr that says ``needs``, exit 2, nothing on stdout."""
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert proc.stderr.count("\n") == 1 and needs in proc.stderr, proc.stderr


@pytest.mark.slow  # the fast tier checks the same message of `query`
def test_without_duckdb_a_report_is_one_line_and_writes_nothing(tmp_path, smoke_store):
    out = tmp_path / "report"
    assert_refused(without("duckdb", "report", "toy", "--store", str(smoke_store), "--out", str(out)), "needs duckdb")
    assert not out.exists()


@pytest.mark.parametrize(
    "options,says",
    [
        ({"address": "127.0.0.1:6379"}, "leave out --address"),
        ({"max_concurrent": 2}, "--max-concurrent sets the Ray trials"),
        ({"search": "optuna", "num_samples": 2, "where": {"dataset": "thyroid"}}, "a search runs on Ray"),
        ({"executor": "dask"}, "--executor 'dask'"),
    ],
)
def test_options_the_local_executor_cannot_honour_are_refused(tmp_path, options, says):
    options = {"executor": "local", **options}
    where = options.pop("where", {"lam": 100})
    study = "anomaly" if "search" in options else "toy"
    with pytest.raises(isosweep.UsageError) as raised:
        isosweep.run(study, budget="smoke", where=where, store=str(tmp_path / "s"), **options)
    assert says in one_line(raised)
    assert not (tmp_path / "s").exists()


def test_the_cli_refuses_local_with_an_address(tmp_path):
    proc = isosweep_cli(
        "run", "toy", "--executor", "local", "--address", "127.0.0.1:6379", "--store", str(tmp_path), check=False
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "leave out --address" in proc.stderr


@pytest.mark.slow  # three sweeps of 90 trials in this process
@pytest.mark.parametrize("how", ["run", "resume"])
def test_a_local_run_killed_in_a_write_is_finished_by_run_or_resume_exactly_once(tmp_path, how):
    from isosweep.orchestrator.faults import KILL_IN_WRITE_ENV

    store = tmp_path / "store"
    local = ["--executor", "local", "--fuse", "10", "--store", str(store)]
    killed = subprocess.run(
        [sys.executable, "-m", "isosweep", *SWEEP, *local],
        env={**cli_env(), KILL_IN_WRITE_ENV: "30"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stdout + killed.stderr
    before = finished_runs(store)
    assert 30 <= len(before) < 90
    # The bundle being trained left its checkpoint, for resume.
    assert list((store / "ray" / "toy-smoke" / "local").glob("*.pt"))
    if how == "run":
        out = isosweep_cli(*SWEEP, *local).stdout
    else:
        out = isosweep_cli("resume", "toy-smoke", "--store", str(store)).stdout
    assert "ok 90, failed 0, diverged 0, missing 0 of 90" in out
    assert_exactly_once(store, before)
    assert not (store / "ray" / "toy-smoke" / "local").exists()  # a finished sweep keeps no checkpoint


@pytest.mark.slow  # two sweeps compared
def test_injected_faults_are_retried_in_process_and_change_nothing(tmp_path):
    from isosweep.orchestrator.faults import RAISE_ENV

    where = ["--where", "dataset=mix|norm,loss=se", "--executor", "local", "--fuse", "5"]
    clean, faulty = tmp_path / "clean", tmp_path / "faulty"
    isosweep_cli(*SWEEP, *where, "--store", str(clean))
    proc = subprocess.run(
        [sys.executable, "-m", "isosweep", *SWEEP, *where, "--store", str(faulty), "--max-failures", "6"],
        env={**cli_env(), RAISE_ENV: "0.35:7"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_same_results(str(faulty), str(clean))
    assert len(isosweep.trials(str(faulty))) == 20


@pytest.mark.slow  # a toy sweep at the quick budget, stopped and resumed
def test_a_stopped_local_sweep_resumes_its_bundle_from_the_checkpoint(tmp_path):
    store = tmp_path / "store"
    stop = signal.SIGTERM  # as a batch system stops a job; Ctrl-C takes the same path (isosweep.interrupts)
    args = ["run", "toy", "--budget", "quick", "--where", "lam=100,dataset=mix,loss=se|dconv", "--executor", "local"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "isosweep", *args, "--store", str(store)],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    checkpoints = store / "ray" / "toy-quick" / "local"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(checkpoints.glob("*.pt")):
        time.sleep(0.2)
    proc.send_signal(stop)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + stop, out + err
    assert "isosweep resume toy-quick" in err and "Traceback" not in err
    saved = torch.load(next(checkpoints.glob("*.pt")), weights_only=False)
    stopped_at = int(saved["state"]["epoch"])
    assert 0 < stopped_at < 90
    resumed = isosweep_cli("resume", "toy-quick", "--store", str(store)).stdout
    assert "toy-quick: ok 2, failed 0, diverged 0, missing 0 of 2" in resumed
    # The bundle went on from its checkpoint: its first report after the resume is past the stop.
    first = re.search(r"bundle 0: (\d+)/90", resumed)
    assert first is not None and int(first.group(1)) > stopped_at, resumed
    # and each member's curve has every epoch once.
    curves = isosweep.curves(str(store))
    assert len(isosweep.trials(str(store))) == 2
    assert sorted(curves.groupby("trial_key")["epoch"].apply(list).tolist()) == [list(range(1, 91))] * 2
    assert not checkpoints.exists()


def test_on_a_gpu_each_fused_bundle_is_as_large_as_the_gpu_holds(monkeypatch, capsys):
    """The local executor's plan on a 140 GiB GPU (torch's device probe answers as on an H200): the
    whole toy ablation in one bundle, each data set's 500-trial anomaly grid in one."""
    from isosweep.orchestrator.local import local_plan
    from isosweep.orchestrator.options import RunOptions
    from isosweep.studies import STUDIES

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(total_memory=140 << 30))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "GPU-140")
    options = RunOptions(sweep="s", executor="local", gpus_per_trial=None)
    toy = local_plan(STUDIES["toy"].configs("paper"), set(), "auto", False, options)
    assert [len(b) for b in toy.bundles] == [90]
    grid = local_plan(STUDIES["anomaly"].configs("paper", seeds=20), set(), "auto", False, options)
    assert [len(b) for b in grid.bundles] == [500] * 4
    assert "on the GPU GPU-140 (140.0 GiB)" in capsys.readouterr().out
    half = local_plan(
        STUDIES["anomaly"].configs("paper", seeds=20), set(), "auto", False, RunOptions(sweep="s", gpus_per_trial=0.5)
    )
    assert "(70.0 GiB)" in capsys.readouterr().out and len(half.bundles) >= 4


def test_a_gpu_asked_for_where_torch_sees_none_is_refused(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(isosweep.UsageError) as raised:
        isosweep.run("toy", budget="smoke", store=str(tmp_path / "s"), executor="local", gpus_per_trial=1)
    assert "torch can use" in one_line(raised)
    assert not (tmp_path / "s").exists()
