"""Search beyond the grid (`isosweep run anomaly --search optuna`): bad requests refused, points in
the store like any trial, the store as the searcher's memory, and a search killed mid-write that
`resume` finishes with every point once."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from anomaly_files import write_anomaly_files

from helpers import EXE, cli_env, isosweep, wait_until_still
from isosweep.cli import main
from isosweep.orchestrator.search import (
    SearchHistory,
    SearchSpec,
    build_optuna_study,
    point_objective,
    read_history,
    search_space,
)
from isosweep.store import Store
from isosweep.studies import ANOMALY_LAMBDAS, STUDIES

SWEEP = "anomaly-search-thyroid-smoke"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_anomaly_files(tmp_path_factory.mktemp("search-data"))


def _search(store: Path, root: Path, *extra: str, env: dict[str, str] | None = None, check: bool = True):
    args = [
        "run",
        "anomaly",
        "--search",
        "optuna",
        "--where",
        "dataset=thyroid",
        "--budget",
        "smoke",
        "--data-root",
        str(root),
        "--store",
        str(store),
        *extra,
    ]
    if env is None:
        return isosweep(*args, check=check)
    return subprocess.run([EXE, *args], capture_output=True, text=True, env={**cli_env(), **env}, timeout=600)


def _rows(store: Path) -> list[dict]:
    out = isosweep(
        "query",
        "select trial_key, run_id, sweep, dataset, lam1, lam2, seed, status, val_f1, f1 "
        "from trials order by lam1, lam2, seed",
        "--store",
        str(store),
        "--format",
        "json",
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--search", "optuna", "--num-samples", "2"], "add --where dataset=NAME"),
        (["--search", "optuna", "--num-samples", "2", "--where", "dataset=thyroid|arrhythmia"], "one data set"),
        (["--search", "optuna", "--where", "dataset=thyroid"], "--search needs --num-samples"),
        (["--num-samples", "2", "--where", "dataset=thyroid"], "add --search optuna"),
        (["--search", "grid", "--num-samples", "2", "--where", "dataset=thyroid"], "one of optuna"),
        (
            ["--search", "optuna", "--num-samples", "2", "--where", "dataset=thyroid,lam1=6000"],
            "cannot be set in a search",
        ),
        (
            ["--search", "optuna", "--num-samples", "2", "--where", "dataset=thyroid", "--lam-range", "5000:100"],
            "LOW:HIGH",
        ),
        (["--search", "optuna", "--num-samples", "2", "--where", "dataset=thyroid", "--force"], "--force"),
        (["--search", "optuna", "--num-samples", "0", "--where", "dataset=thyroid"], "must be at least 1"),
    ],
)
def test_bad_search_requests_are_refused_with_one_line(tmp_path, capsys, data_root, args, needle):
    store = tmp_path / "store"
    code = main(["run", "anomaly", "--budget", "smoke", "--data-root", str(data_root), "--store", str(store), *args])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not store.exists()


def test_search_only_on_the_anomaly_grid(tmp_path, capsys):
    for study in ("toy", "anomaly-paper"):
        assert main(["run", study, "--search", "optuna", "--num-samples", "2", "--store", str(tmp_path / "s")]) == 2
        assert "--search runs on a study with a (lambda1, lambda2) grid (anomaly), not" in capsys.readouterr().err


@pytest.mark.slow  # two Ray searches
def test_points_land_in_the_store_and_a_second_run_continues_the_search(tmp_path, data_root):
    store = tmp_path / "store"
    first = _search(store, data_root, "--num-samples", "2", "--seeds", "2", "--lam-range", "2000:50000")
    assert "0 done, 2 to run" in first.stdout
    rows = _rows(store)
    points = {(r["lam1"], r["lam2"]) for r in rows}
    assert len(rows) == 4 and len(points) == 2
    assert all(
        r["status"] == "ok" and r["sweep"] == SWEEP and r["val_f1"] is not None and 0 <= r["f1"] <= 1 for r in rows
    )
    assert all(2000 <= v <= 50000 for p in points for v in p)
    assert not points & {(a, b) for a in ANOMALY_LAMBDAS for b in ANOMALY_LAMBDAS}
    search = [
        json.loads(line)
        for line in isosweep("query", "@anomaly_search", "--store", str(store), "--format", "json").stdout.splitlines()
    ]
    assert sorted(r["val_rank"] for r in search) == [1, 2] and {r["seeds"] for r in search} == {2}
    best = max(point_objective(r["val_f1"] for r in rows if (r["lam1"], r["lam2"]) == p) for p in points)
    chosen = next(r for r in search if r["val_rank"] == 1)
    assert chosen["val_f1"] == pytest.approx(best, abs=1e-4)

    # The store is the searcher's memory: the 2 points are told to the sampler, only 1 more runs,
    # and nothing finished is trained again.
    second = _search(store, data_root, "--num-samples", "3", "--seeds", "2", "--lam-range", "2000:50000")
    assert "2 done, 1 to run; 2 evaluated point(s)" in second.stdout
    after = _rows(store)
    assert len(after) == 6 and len({(r["lam1"], r["lam2"]) for r in after}) == 3
    kept = {r["trial_key"]: r["run_id"] for r in rows}
    assert {r["trial_key"]: r["run_id"] for r in after if r["trial_key"] in kept} == kept
    third = _search(store, data_root, "--num-samples", "3", "--seeds", "2", "--lam-range", "2000:50000")
    assert "3 done, 0 to run" in third.stdout and len(_rows(store)) == 6
    report = tmp_path / "report"
    isosweep("report", "anomaly", "--store", str(store), "--out", str(report))
    assert "## Search beyond the grid" in (report / "report.md").read_text()
    table = (report / "tables" / "anomaly_search.csv").read_text().splitlines()
    assert len(table) == 1 + 3 and table[1].split(",")[2] == "1"  # ranked by validation F1, best first


@pytest.mark.slow  # a Ray search
def test_history_holds_complete_points_and_queues_unfinished_ones(tmp_path, data_root):
    store_path = tmp_path / "store"
    _search(store_path, data_root, "--num-samples", "2", "--seeds", "2")
    rows = _rows(store_path)
    store, study = Store(str(store_path)), STUDIES["anomaly"]
    spec = SearchSpec(SWEEP, "thyroid", "smoke", (0, 1), 5)
    history = read_history(store, study, spec, {})
    assert history.own_done == 2 and history.unfinished == ()
    expected = {(r["lam1"], r["lam2"]): [] for r in rows}
    for r in rows:
        expected[(r["lam1"], r["lam2"])].append(r["val_f1"])
    assert {(a, b): v for a, b, v in history.evaluated} == pytest.approx(
        {p: point_objective(v) for p, v in expected.items()}
    )
    # With 3 seeds asked for, those points are unfinished (seed 2 is missing): queued, not evaluated.
    wider = read_history(store, study, SearchSpec(SWEEP, "thyroid", "smoke", (0, 1, 2), 5), {})
    assert wider.evaluated == () and set(wider.unfinished) == set(expected)
    # Another search's points guide the sampler but do not count as this one's.
    other = read_history(store, study, SearchSpec("another", "thyroid", "smoke", (0, 1), 5), {})
    assert other.own_done == 0 and len(other.evaluated) == 2
    optuna_study = build_optuna_study(spec, history)
    assert sorted(t.value for t in optuna_study.trials) == pytest.approx(sorted(v for _, _, v in history.evaluated))
    queued = build_optuna_study(spec, SearchHistory((), 0, ((3000.0, 4000.0),)))
    assert queued.ask(fixed_distributions=search_space(spec)).params == {"lam1": 3000.0, "lam2": 4000.0}


@pytest.mark.slow
def test_a_search_killed_mid_write_is_finished_by_resume(tmp_path, data_root):
    store = tmp_path / "store"
    killed = _search(
        store, data_root, "--num-samples", "3", "--seeds", "2", env={"ISOSWEEP_TEST_KILL_IN_WRITE": "2"}, check=False
    )
    assert killed.returncode != 0
    wait_until_still(store)
    before = _rows(store)
    assert len(before) == 2 and len({(r["lam1"], r["lam2"]) for r in before}) == 1
    # The kill left no half-written file where readers look: every Parquet file of the tables
    # (per-trial, or a worker's merge of them) reads whole, and the trials rows are the finished ones.
    visible = [p for table in ("trials", "dims", "curves", "points") for p in (store / table).rglob("*.parquet")]
    rows = {p: pq.read_table(p).num_rows for p in visible}  # data pages and all
    assert rows and all(n == pq.read_metadata(p).num_rows for p, n in rows.items())
    assert all((n == 0) == (p.parts[-3] == "points") for p, n in rows.items())  # anomaly trials have no points
    assert sum(pq.read_metadata(p).num_rows for p in visible if p.parts[-3] == "trials") == len(before)
    resumed = isosweep("resume", SWEEP, "--store", str(store))
    assert "ok 6, failed 0, diverged 0, missing 0 of 6" in resumed.stdout
    after = _rows(store)
    assert len(after) == 6 and len({r["trial_key"] for r in after}) == 6
    assert len({(r["lam1"], r["lam2"]) for r in after}) == 3
    runs = {r["trial_key"]: r["run_id"] for r in after}
    assert all(runs[r["trial_key"]] == r["run_id"] for r in before)  # nothing finished was run again
    # The restored searcher kept its history: the point finished before the kill is among the
    # complete trials of its Optuna study, with the mean validation F1 the store holds.
    newest = max((store / "ray" / SWEEP).glob("searcher-state-*.pkl"))  # named by the session's start time
    with open(newest, "rb") as f:
        told = {
            (t.params["lam1"], t.params["lam2"]): t.value
            for t in pickle.load(f)["_ot_study"].trials
            if t.state.name == "COMPLETE"
        }
    first = (before[0]["lam1"], before[0]["lam2"])
    assert len(told) == 3 and told[first] == pytest.approx(point_objective(r["val_f1"] for r in before))
    again = _search(store, data_root, "--num-samples", "3", "--seeds", "2")
    assert "3 done, 0 to run" in again.stdout
    assert os.path.exists(store / "ray" / f"{SWEEP}.isosweep.json")
