"""The toy study end to end through the CLI: a real local Ray instance, real Parquet, real DuckDB."""

import hashlib
import json
import shutil

import pytest

from helpers import isosweep


def _snapshot(root):
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in root.rglob("*")
        if p.is_file()
    }


def test_smoke_sweep_writes_every_trial_once(smoke_store):
    assert len(list((smoke_store / "trials" / "study=toy").glob("*.parquet"))) == 90
    out = isosweep("query", "select count(*) as n from trials", "--store", str(smoke_store), "--format", "csv").stdout
    assert out.split() == ["n", "90"]
    out = isosweep(
        "query",
        "select count(*) as n, count(distinct trial_key) as k, count(*) filter (where status = 'ok') as ok from trials",
        "--store",
        str(smoke_store),
        "--format",
        "json",
    ).stdout
    assert json.loads(out) == {"n": 90, "k": 90, "ok": 90}
    out = isosweep("query", "select count(*) as n from dims", "--store", str(smoke_store), "--format", "csv").stdout
    assert out.split() == ["n", "270"]
    # Plain table output, as a user sees it.
    table = isosweep("query", "select count(*) as n from trials", "--store", str(smoke_store)).stdout.splitlines()
    assert [line.strip() for line in table] == ["n", "--", "90", "(1 row)"]


def test_every_trial_has_its_measurements(smoke_store):
    out = isosweep(
        "query",
        """
        select count(*) filter (where n_active is null or recon is null or corr_post is null or rank_prior is null) as missing,
               count(distinct dataset || loss || lam) as points,
               min(epochs) as epochs, max(git_rev is null)::int as no_rev, count(distinct torch_version) as tv
        from trials""",
        "--store",
        str(smoke_store),
        "--format",
        "json",
    ).stdout
    row = json.loads(out)
    assert row["missing"] == 0 and row["points"] == 90 and row["epochs"] == 2 and row["tv"] == 1
    curves = isosweep(
        "query",
        "select count(*) as n, count(distinct trial_key) as k from curves",
        "--store",
        str(smoke_store),
        "--format",
        "json",
    ).stdout
    assert json.loads(curves) == {"n": 180, "k": 90}
    points = isosweep(
        "query", "select count(*) as n from points", "--store", str(smoke_store), "--format", "json"
    ).stdout
    assert json.loads(points) == {"n": 90 * 256}


@pytest.mark.slow  # starts Ray again
def test_running_again_runs_nothing_and_touches_nothing(smoke_store):
    before = _snapshot(smoke_store)
    proc = isosweep("run", "toy", "--budget", "smoke", "--no-compact", "--store", str(smoke_store))
    assert "90 already complete, 0 to run" in proc.stdout
    assert _snapshot(smoke_store) == before


def test_resume_of_a_finished_sweep_restores_it_and_trains_nothing(smoke_store, tmp_path):
    """`isosweep resume` restores the sweep from its Ray experiment folder in the store, trains
    nothing again, and merges the per-trial files as a sweep's end does. (An interrupted sweep
    finished by resume: tests/hostile/ and tests/orchestrator/test_crash_safety.py, slow tier.)"""
    store = tmp_path / "store"
    shutil.copytree(smoke_store, store)
    sql = "select trial_key, run_id, status from trials order by trial_key"
    before = isosweep("query", sql, "--store", str(store), "--format", "json").stdout
    proc = isosweep("resume", "toy-smoke", "--store", str(store))
    assert "ok 90, failed 0, diverged 0, missing 0 of 90" in proc.stdout
    assert "toy-smoke: merged 360 per-trial and compacted file(s) into 4" in proc.stdout, proc.stdout
    assert isosweep("query", sql, "--store", str(store), "--format", "json").stdout == before
    assert len(before.splitlines()) == 90


def test_status_counts(smoke_store):
    out = isosweep("status", "--store", str(smoke_store)).stdout
    line = next(row for row in out.splitlines() if row.startswith("toy "))
    assert line.split() == ["toy", "smoke", "90", "90", "0", "0", "0", "0"]


def test_named_summary_query(smoke_store):
    out = isosweep("query", "@toy_summary", "--store", str(smoke_store), "--format", "json").stdout
    rows = [json.loads(row) for row in out.splitlines()]
    assert len(rows) == 90
    assert {"norm_active", "sigma_inv2_ratios", "best_estimate", "best_corr"} <= set(rows[0])
