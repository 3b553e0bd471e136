"""Compaction at the end of every sweep: few files right after a sweep, a bound on the files per
(table, study) over many sweeps, `--no-compact`, and kills during the sweep-end merge."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import EXE, cli_env, isosweep, parquet_files, wait_until_still
from isosweep.orchestrator.compact import MAX_COMPACTED, tiered_inputs
from isosweep.orchestrator.faults import KILL_IN_COMPACT_ENV

TABLES = ("trials", "dims", "curves", "points")
MIX = ["run", "toy", "--budget", "smoke", "--where", "dataset=mix"]


def counts(store: Path) -> dict[str, int]:
    sql = (
        "select (select count(*) from trials) as n, (select count(distinct trial_key) from trials) as k, "
        "(select count(*) from dims) as dims, (select count(*) from curves) as curves"
    )
    return json.loads(isosweep("query", sql, "--store", str(store), "--format", "json").stdout)


def test_tiered_rule_bounds_files_and_rewrites(tmp_path):
    """Over 400 sweeps of random sizes, a folder never keeps more than MAX_COMPACTED compacted
    files, and each byte is rewritten about log2(sweeps) times at most (a binary counter)."""
    import random

    rng = random.Random(0)
    compacted: dict[str, int] = {}
    written = total = 0
    for sweep in range(400):
        fresh = {f"t{sweep}-{i}": rng.randint(50, 150) for i in range(rng.choice([1, 5, 90, 900]))}
        chosen = tiered_inputs(fresh, compacted)
        assert set(fresh) <= set(chosen), "every new per-trial file is merged"
        merged = sum(fresh.get(p, compacted.get(p, 0)) for p in chosen)
        for p in chosen:
            compacted.pop(p, None)
        compacted[f"compact-{sweep}"] = merged
        written += merged
        total += sum(fresh.values())
        assert len(compacted) <= MAX_COMPACTED
    assert written <= (math.log2(400) + 2) * total, (written, total)


def snapshot(store: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(store)): (p.stat().st_mtime_ns, p.stat().st_size)
        for table in TABLES
        for p in (store / table).rglob("*")
        if p.is_file()
    }


@pytest.mark.slow  # several Ray sweeps
def test_a_sweep_leaves_compacted_files_and_no_compact_leaves_its_own(tmp_path):
    store = tmp_path / "store"
    # --fuse 3: ten units, each merged by its worker into one file per table; the sweep's end then
    # merges the smallest of those ten until MAX_COMPACTED remain.
    out = isosweep(*MIX, "--fuse", "3", "--store", str(store)).stdout
    assert "workers merged 120 per-trial file(s) into 40" in out, out
    assert "per-trial and compacted file(s) into 4 in" in out, out
    for table in TABLES:
        names = parquet_files(store, table)
        assert len(names) == MAX_COMPACTED and all(n.startswith("compact-") for n in names), (table, names)
    assert counts(store) == {"n": 30, "k": 30, "dims": 90, "curves": 60}
    # Running it again trains nothing and touches no file.
    before = snapshot(store)
    assert "30 already complete, 0 to run" in isosweep(*MIX, "--store", str(store)).stdout
    assert snapshot(store) == before
    # --no-compact keeps one file per trial and table.
    out = isosweep(
        "run", "toy", "--budget", "smoke", "--where", "dataset=norm|ramp", "--no-compact", "--store", str(store)
    ).stdout
    assert "merged" not in out
    assert sum(not n.startswith("compact-") for n in parquet_files(store, "trials")) == 60
    assert counts(store) == {"n": 90, "k": 90, "dims": 270, "curves": 180}
    out = isosweep("run", "toy", "--budget", "smoke", "--store", str(store)).stdout
    assert "90 already complete, 0 to run" in out
    # That run had nothing to train, and merged the files --no-compact left.
    merged = re.search(r"merged (\d+) per-trial and compacted file\(s\) into 4 in", out)
    assert merged and int(merged.group(1)) >= 240, out
    for table in TABLES:
        names = parquet_files(store, table)
        assert len(names) <= MAX_COMPACTED and all(n.startswith("compact-") for n in names), (table, names)
    assert counts(store) == {"n": 90, "k": 90, "dims": 270, "curves": 180}


def trial_runs(store: Path) -> dict[str, set]:
    """trial key -> run ids in the raw trials files (per-trial and compacted)."""
    runs: dict[str, set] = {}
    for path in store.glob("trials/*/*.parquet"):
        for row in pq.read_table(path, columns=["trial_key", "run_id"]).to_pylist():
            runs.setdefault(row["trial_key"], set()).add(row["run_id"])
    return runs


@pytest.mark.parametrize(
    "phase,fuse",
    [
        # a worker merging its unit's files kills the driver and itself
        pytest.param("worker-after-write", "auto", marks=pytest.mark.slow),
        pytest.param("worker-mid-remove", "auto", marks=pytest.mark.slow),
        pytest.param("after-write", "3", marks=pytest.mark.slow),  # the sweep's end (ten units: it merges)
        pytest.param("mid-remove", "3", marks=pytest.mark.slow),
    ],
)
def test_killed_during_a_merge(tmp_path, phase, fuse):
    store = tmp_path / "store"
    proc = subprocess.Popen(
        [EXE, *MIX, "--fuse", fuse, "--store", str(store)],
        env={**cli_env(), KILL_IN_COMPACT_ENV: phase},
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = proc.communicate(timeout=600)[0]
    try:  # the local Ray processes the killed driver started die with its session
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    assert proc.returncode == -signal.SIGKILL, output
    wait_until_still(store)
    # The merged file exists beside (some of) the files it merged: every trial written is seen once.
    before = trial_runs(store)
    assert before and all(len(runs) == 1 for runs in before.values()), before
    found = counts(store)
    assert found["n"] == found["k"] == len(before), found
    # Running the sweep again trains only what was not written, and finishes the merges.
    out = isosweep(*MIX, "--store", str(store)).stdout
    assert f"{len(before)} already complete, {30 - len(before)} to run" in out and "ok 30, failed 0" in out, out
    after = trial_runs(store)
    assert all(after[key] == runs for key, runs in before.items())  # nothing finished was run again
    for table in TABLES:
        names = parquet_files(store, table)
        assert len(names) <= MAX_COMPACTED and all(n.startswith("compact-") for n in names), (table, names)
    assert counts(store) == {"n": 30, "k": 30, "dims": 90, "curves": 60}


@pytest.mark.slow
def test_nine_hundred_trial_sweep_leaves_few_files(tmp_path):
    """The acceptance check of a paper-sized smoke sweep: `--seeds 10` is 900 trials."""
    store = tmp_path / "store"
    out = isosweep("run", "toy", "--budget", "smoke", "--seeds", "10", "--store", str(store), timeout=3600).stdout
    assert "ok 900, failed 0, diverged 0, missing 0 of 900" in out
    assert len(list(store.glob("trials/**/*"))) <= 100
    summary = isosweep("query", "@toy_summary", "--store", str(store), "--format", "json").stdout
    rows = [json.loads(line) for line in summary.splitlines()]
    assert len(rows) == 90 and all(r["seeds"] == 10 for r in rows), rows[:2]
