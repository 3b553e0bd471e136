"""Crash safety with real processes: a driver killed with SIGKILL at chosen points, then finished
by `isosweep run` again or by `isosweep resume`; every trial ends up in the store exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import EXE, cli_env, isosweep, wait_until_still
from isosweep.orchestrator.faults import KILL_IN_WRITE_ENV, RAISE_ENV, Faults

SWEEP = ["run", "toy", "--budget", "smoke"]


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the driver's whole session: the local Ray processes it started die with it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def run_killed_in_write(store: Path, after: int) -> subprocess.Popen:
    """Start a sweep whose driver is killed while a trials file is half-way to the store."""
    env = {**cli_env(), KILL_IN_WRITE_ENV: str(after)}
    # Two workers check the count of finished trials at the same moment and can both pass N; near
    # the end of the sweep one worker makes "all but one finished" exact.
    serial = ["--max-concurrent", "1"] if after >= 60 else []
    proc = subprocess.Popen(
        [EXE, *SWEEP, *serial, "--store", str(store)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proc.wait(timeout=300)
    assert proc.returncode == -signal.SIGKILL, "the driver was killed by the switch"
    _kill_group(proc)
    wait_until_still(store)
    return proc


def run_killed_from_outside(store: Path, when_done: int) -> None:
    """Start a sweep and SIGKILL it once ``when_done`` trials are in the store. Bundles of 5: a
    worker writes (and merges) the whole bundle it is training even after its driver is gone, so
    two bundles of 45 would leave nothing to run again."""
    proc = subprocess.Popen(
        [EXE, *SWEEP, "--fuse", "5", "--store", str(store)],
        env=cli_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if trials_written(store) >= when_done:
            break
        time.sleep(0.05)
    _kill_group(proc)
    wait_until_still(store)


def trials_written(store: Path) -> int:
    """Rows in the store's trials files (per-trial, or compacted: a worker merges its unit's files)."""
    rows = 0
    for path in store.glob("trials/*/*.parquet"):
        try:
            rows += pq.read_metadata(path).num_rows
        except (FileNotFoundError, OSError):
            continue  # merged away meanwhile
    return rows


def finished_runs(store: Path) -> dict[str, str]:
    """trial key -> run id of every trial file visible in the store; every visible file must read."""
    runs = {}
    for path in store.glob("*/*/*.parquet"):
        table = pq.read_table(path)  # a partial file would fail here
        if path.parts[-3] == "trials":
            for row in table.select(["trial_key", "run_id", "status"]).to_pylist():  # one, or many once compacted
                assert row["status"] == "ok"
                assert runs.setdefault(row["trial_key"], row["run_id"]) == row["run_id"]
    return runs


def assert_exactly_once(store: Path, before: dict[str, str]) -> None:
    after = finished_runs(store)
    assert len(after) == 90, f"{90 - len(after)} trials lost"
    repeated = [k for k, run in before.items() if after[k] != run]
    assert not repeated, f"trials finished before the kill were run again: {repeated}"
    out = isosweep(
        "query",
        "select count(*) as n, count(distinct trial_key) as k, count(*) filter (where status = 'ok') as ok from trials",
        "--store",
        str(store),
        "--format",
        "json",
    ).stdout
    assert json.loads(out) == {"n": 90, "k": 90, "ok": 90}
    dims = isosweep("query", "select count(*) as n from dims", "--store", str(store), "--format", "json").stdout
    assert json.loads(dims) == {"n": 270}
    hidden = [p.name for p in store.glob("trials/*/*.parquet") if p.name.startswith(".")]
    assert not hidden


def _recover(store: Path, how: str) -> None:
    if how == "run":
        out = isosweep(*SWEEP, "--store", str(store)).stdout
    else:
        out = isosweep("resume", "toy-smoke", "--store", str(store)).stdout
    assert "ok 90, failed 0, diverged 0, missing 0 of 90" in out


# Both are cases of test_every_kill_point_with_both_recoveries too; each is a Ray sweep killed and
# recovered (the fast tier's resume is test_hostile_ray's Ctrl-C).
@pytest.mark.slow
@pytest.mark.parametrize("after,how", [(30, "run"), (89, "resume")])
def test_driver_killed_during_a_store_write(tmp_path, after, how):
    store = tmp_path / "store"
    run_killed_in_write(store, after)
    before = finished_runs(store)
    assert after <= len(before) < 90
    orphans = list(store.glob("trials/*/.*.tmp"))
    assert orphans, "the kill landed between the write and the rename"
    _recover(store, how)
    assert_exactly_once(store, before)


@pytest.mark.slow  # a Ray sweep killed and run again; test_hostile_ray's Ctrl-C and resume is the fast tier's
def test_driver_killed_from_outside_mid_sweep_then_run_again(tmp_path):
    store = tmp_path / "store"
    run_killed_from_outside(store, when_done=20)
    before = finished_runs(store)
    assert 20 <= len(before) < 90
    _recover(store, "run")
    assert_exactly_once(store, before)


@pytest.mark.slow
@pytest.mark.parametrize("after", [0, 1, 30, 60, 89])
@pytest.mark.parametrize("how", ["run", "resume"])
def test_every_kill_point_with_both_recoveries(tmp_path, after, how):
    store = tmp_path / "store"
    run_killed_in_write(store, after)
    before = finished_runs(store)
    _recover(store, how)
    assert_exactly_once(store, before)


def _faulted_keys(keys: list[str], p: float, seed: int, epochs: int) -> set[str]:
    faults = Faults(raise_p=p, raise_seed=seed)
    hit = set()
    for key in keys:
        for epoch in range(1, epochs + 1):
            try:
                faults.maybe_raise(key, epoch, 0)
            except RuntimeError:
                hit.add(key)
    return hit


@pytest.mark.slow  # two Ray sweeps compared
def test_injected_faults_are_retried_from_checkpoints_and_change_nothing(tmp_path):
    where = ["--where", "dataset=mix|norm,loss=se"]
    clean, faulty = tmp_path / "clean", tmp_path / "faulty"
    isosweep(*SWEEP, *where, "--store", str(clean))
    env_run = subprocess.run(
        [EXE, *SWEEP, *where, "--store", str(faulty), "--max-failures", "6"],
        env={**cli_env(), RAISE_ENV: "0.35:7"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert env_run.returncode == 0, env_run.stdout + env_run.stderr
    assert "retry" in env_run.stdout

    def rows(store: Path, sql: str) -> list[dict]:
        out = isosweep("query", sql, "--store", str(store), "--format", "json").stdout
        return [json.loads(line) for line in out.splitlines()]

    trial_sql = (
        "select trial_key, status, loss_final, recon, kl, coding_loss, transform_loss, corr_post, steps "
        "from trials order by trial_key"
    )
    dims_sql = "select trial_key, dim, norm_mean, sigma_inv2_mean, dprime_mean from dims order by trial_key, dim"
    curve_sql = "select trial_key, step, epoch, loss from curves order by trial_key, step"
    assert rows(faulty, trial_sql) == rows(clean, trial_sql)
    assert rows(faulty, dims_sql) == rows(clean, dims_sql)
    curves = rows(faulty, curve_sql)
    assert curves == rows(clean, curve_sql)
    keys = [r["trial_key"] for r in rows(faulty, trial_sql)]
    assert len(keys) == 20
    # Faults hit some trials; their logged steps still run once through, with no restart from 0.
    assert _faulted_keys(keys, 0.35, 7, 2)
    for key in keys:
        epochs = [c["epoch"] for c in curves if c["trial_key"] == key]
        assert epochs == [1, 2]


@pytest.mark.slow
def test_extending_a_finished_sweep_runs_only_new_keys(tmp_path):
    store = str(tmp_path / "store")
    first = isosweep(*SWEEP, "--where", "dataset=mix,loss=se,lam=1|2", "--store", store).stdout
    assert "2 trials planned, 0 already complete, 2 to run" in first
    seeds = isosweep(*SWEEP, "--where", "dataset=mix,loss=se,lam=1|2", "--seeds", "2", "--store", store).stdout
    assert "4 trials planned, 2 already complete, 2 to run" in seeds
    lams = isosweep(*SWEEP, "--where", "dataset=mix,loss=se,lam=1|2|3", "--seeds", "2", "--store", store).stdout
    assert "6 trials planned, 4 already complete, 2 to run" in lams
    out = isosweep(
        "query",
        "select count(*) as n, count(distinct trial_key) as k from trials",
        "--store",
        store,
        "--format",
        "json",
    ).stdout
    assert json.loads(out) == {"n": 6, "k": 6}
