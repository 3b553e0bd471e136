"""Compaction: merged files, kills at every phase, and compaction running beside a live sweep."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from helpers import EXE, cli_env, isosweep, parquet_files
from isosweep.orchestrator.faults import KILL_IN_COMPACT_ENV

VIEW_SQL = {
    "trials": "select trial_key, run_id, status from trials order by trial_key",
    "dims": "select trial_key, dim, norm_mean from dims order by trial_key, dim",
    "curves": "select count(*) as n, count(distinct trial_key) as k from curves",
    "points": "select count(*) as n, count(distinct trial_key) as k from points",
}


def views(store: Path) -> dict[str, list]:
    out = {}
    for name, sql in VIEW_SQL.items():
        text = isosweep("query", sql, "--store", str(store), "--format", "json").stdout
        out[name] = [json.loads(line) for line in text.splitlines()]
    return out


@pytest.fixture
def store_copy(smoke_store, tmp_path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(smoke_store, copy, ignore=shutil.ignore_patterns("ray"))
    return copy


@pytest.mark.slow  # the whole smoke store, and Ray started once; sweeps compact in the fast tier (test_custom_study)
def test_compaction_merges_files_and_changes_no_answer(store_copy):
    before = views(store_copy)
    assert len(parquet_files(store_copy, "trials")) == 90
    out = isosweep("compact", "--store", str(store_copy)).stdout
    assert "compacted 360 file(s) into 4 file(s)" in out
    for table in ("trials", "dims", "curves", "points"):
        (name,) = parquet_files(store_copy, table)
        assert name.startswith("compact-")
    assert views(store_copy) == before
    # The sweep sees every trial as complete and runs nothing.
    assert (
        "90 already complete, 0 to run"
        in isosweep("run", "toy", "--budget", "smoke", "--store", str(store_copy)).stdout
    )
    # Compacting again merges nothing more.
    assert "compacted 0 file(s) into 0 file(s)" in isosweep("compact", "--store", str(store_copy)).stdout


@pytest.mark.slow  # a killed compaction of the whole smoke store, then one more, each checked by 4 queries
@pytest.mark.parametrize("phase", ["after-write", "mid-remove"])
def test_compaction_killed_at_each_phase(store_copy, phase):
    before = views(store_copy)
    proc = subprocess.run(
        [EXE, "compact", "--store", str(store_copy)],
        env={**cli_env(), KILL_IN_COMPACT_ENV: phase},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9
    # Rows now sit in both the merged file and (some of) the per-trial files: still seen once.
    assert len(parquet_files(store_copy, "dims")) > 1
    assert views(store_copy) == before
    isosweep("compact", "--store", str(store_copy))
    assert views(store_copy) == before
    assert all(len(parquet_files(store_copy, t)) == 1 for t in VIEW_SQL)


@pytest.mark.slow
def test_compaction_beside_a_running_sweep(tmp_path):
    store = tmp_path / "store"
    sweep = subprocess.Popen(
        [EXE, "run", "toy", "--budget", "smoke", "--fuse", "5", "--store", str(store)],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    rounds = 0
    while sweep.poll() is None:
        if store.joinpath("trials").exists():
            isosweep("compact", "--store", str(store))
            rounds += 1
            # While both run, a reader never sees a trial twice.
            out = isosweep(
                "query",
                "select count(*) as n, count(distinct trial_key) as k from trials",
                "--store",
                str(store),
                "--format",
                "json",
            ).stdout
            row = json.loads(out)
            assert row["n"] == row["k"]
        time.sleep(0.2)
    output = sweep.stdout.read()
    assert sweep.returncode == 0, output
    assert rounds >= 2
    isosweep("compact", "--store", str(store))
    counts = views(store)
    assert len(counts["trials"]) == 90 and {r["status"] for r in counts["trials"]} == {"ok"}
    assert len(counts["dims"]) == 270
    assert counts["curves"] == [{"n": 180, "k": 90}]
    assert "90 already complete, 0 to run" in isosweep("run", "toy", "--budget", "smoke", "--store", str(store)).stdout
