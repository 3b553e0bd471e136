"""Damaged stores: a trial's file removed, random bytes in a compacted file, a truncated trials
file, a Parquet file of a foreign schema among the tables.

A trial is complete only while readable files hold every row its trials row counts: the
planner, the workers and ``status`` agree on it, so a trial that lost a table is trained again (or
named with the fix), never silently counted as done. Every reader (status, query, compact,
report, the Python API) treats an unreadable or foreign file alike, ``compact`` leaves such a file
where it is and exits 2, and a damaged file is one line, never a traceback.

The stores are fabricated (``helpers.write_trial``) with the trials of ``isosweep run toy
--where dataset=mix,lam=100`` at the smoke budget; the tests that rerun that sweep train the
damaged trials on a real local Ray.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import isosweep
from helpers import EXE, cli_env, write_trial
from isosweep.cli import main
from isosweep.errors import UsageError
from isosweep.orchestrator.compact import compact
from isosweep.store import Store
from isosweep.studies import STUDIES
from isosweep.trainers.config import TrialConfig
from isosweep.where import parse_where

WHERE = "dataset=mix,lam=100"
SWEEP = ("toy", "--budget", "smoke", "--where", WHERE)
DIMS_PER_TRIAL = 3
"""Rows of dims that ``write_trial`` writes per trial."""


def sweep_configs() -> list[TrialConfig]:
    """The trials that ``isosweep run toy --budget smoke --where dataset=mix,lam=100`` plans."""
    study = STUDIES["toy"]
    return study.configs("smoke", None, parse_where(study, WHERE))


def fabricate(path: Path | str, compacted: bool = False) -> list[str]:
    """A finished store of the sweep's trials (one file per trial and table, or ``compacted``
    into one file per table); their keys."""
    store = Store(str(path))
    keys = [write_trial(store, cfg) for cfg in sweep_configs()]
    if compacted:
        compact(store)
    return keys


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``isosweep`` run as a user runs it."""
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=cli_env(), timeout=600)


def one_line(err: str) -> str:
    """The one line of an error's stderr (asserting there is exactly one, and no traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def counts(store: Path | str, table: str) -> tuple[int, int]:
    """(rows, distinct trial keys) of a view, through the Python API."""
    row = isosweep.query(str(store), f"select count(*) n, count(distinct trial_key) k from {table}").iloc[0]
    return int(row["n"]), int(row["k"])


def status_of(store: Path | str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["status", "--store", str(store)]) == 0
    return capsys.readouterr().out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compacted_file(store: Path, table: str) -> Path:
    (found,) = (store / table / "study=toy").glob("compact-*.parquet")
    return found


# -- results lost without a word -------------------------------------------------------------


@pytest.mark.slow  # a Ray sweep
def test_a_trial_whose_dims_file_was_removed_is_damaged_and_trained_again(tmp_path, capsys):
    store = tmp_path / "store"
    keys = fabricate(store)
    victim = keys[0]
    (store / "dims" / "study=toy" / f"{victim}.parquet").unlink()

    out = status_of(store, capsys)
    assert out.splitlines()[0].split() == [
        "study",
        "budget",
        "planned",
        "ok",
        "failed",
        "diverged",
        "damaged",
        "missing",
        "extra",
    ]
    assert out.splitlines()[2].split() == ["toy", "smoke", "90", "2", "0", "0", "1", "87", "0"]
    assert f"toy smoke {victim}: no readable dims rows" in out
    assert main(["run", *SWEEP, "--store", str(store), "--dry-run"]) == 0
    assert "2 already complete, 1 to run" in capsys.readouterr().out

    proc = cli("run", *SWEEP, "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    assert "2 already complete, 1 to run" in proc.stdout and "ok 3, failed 0, diverged 0, missing 0 of 3" in proc.stdout
    dims = isosweep.dims(str(store))
    assert dims.groupby("trial_key").size().to_dict() == {
        **{key: DIMS_PER_TRIAL for key in keys[1:]},
        victim: sweep_configs()[0].latent_dim,
    }  # its real dims
    assert counts(store, "trials") == (3, 3)
    out = status_of(store, capsys)
    assert out.splitlines()[2].split() == ["toy", "smoke", "90", "3", "0", "0", "87", "0"]


@pytest.mark.slow  # a Ray sweep
def test_random_bytes_in_a_compacted_dims_file_are_reported_and_its_trials_trained_again(tmp_path, capsys):
    store = tmp_path / "store"
    keys = fabricate(store, compacted=True)
    damaged = compacted_file(store, "dims")
    damaged.write_bytes(os.urandom(3000))

    out = status_of(store, capsys)
    assert out.splitlines()[2].split() == ["toy", "smoke", "90", "0", "0", "0", "3", "87", "0"]
    for key in keys:
        assert f"toy smoke {key}: no readable dims rows" in out
    assert "1 unreadable file(s)" in out and f"  {damaged}" in out.splitlines()
    assert main(["query", "select count(*) from dims", "--store", str(store)]) == 2
    line = one_line(capsys.readouterr().err)
    assert str(damaged) in line and "delete it" in line and "`isosweep status` lists" in line

    # The rerun trains the three trials again; the damaged file stays (nothing merges it), so
    # the summary's query names it, with the fix, in one line (exit 2).
    proc = cli("run", *SWEEP, "--store", str(store))
    assert "0 already complete, 3 to run" in proc.stdout and "ok 3, failed 0, diverged 0, missing 0 of 3" in proc.stdout
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("isosweep: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"isosweep: error: store file {damaged} is unreadable")
    # Named once when the plan read the store (not again by each Ray worker), once as left unmerged.
    assert [line for line in proc.stderr.splitlines() if "warning" in line and damaged.name in line] == [
        f"isosweep: warning: skipping unreadable file {damaged} (ArrowInvalid); delete it and run the sweep again "
        "to recompute its trials",
        f"isosweep: warning: 1 unreadable file(s) left unmerged: {damaged}; delete them and run the sweep again to "
        "recompute their trials (`isosweep status` lists them)",
    ]
    assert "Traceback" not in proc.stderr
    assert damaged.exists()
    out = status_of(store, capsys)
    assert out.splitlines()[2].split() == ["toy", "smoke", "90", "3", "0", "0", "87", "0"]
    assert f"  {damaged}" in out.splitlines()

    # Deleted, as the line says: every trial has its dims, and nothing is left to train.
    damaged.unlink()
    assert counts(store, "dims")[1] == 3
    assert {len(isosweep.dims(str(store), trial_key=key)) > 0 for key in keys} == {True}
    assert main(["run", *SWEEP, "--store", str(store), "--dry-run"]) == 0
    assert "3 already complete, 0 to run" in capsys.readouterr().out


def test_a_damaged_compacted_dims_file_deleted_as_told_is_planned_again(tmp_path, capsys):
    store = tmp_path / "store"
    keys = fabricate(store, compacted=True)
    damaged = compacted_file(store, "dims")
    damaged.write_bytes(os.urandom(3000))
    status_of(store, capsys)
    damaged.unlink()  # the documented fix, before any rerun

    out = status_of(store, capsys)
    assert out.splitlines()[2].split() == ["toy", "smoke", "90", "0", "0", "0", "3", "87", "0"]
    assert main(["run", *SWEEP, "--store", str(store), "--dry-run"]) == 0
    assert "0 already complete, 3 to run" in capsys.readouterr().out
    # The run of such a plan is the one of the tests above: here the file is gone before it.
    assert counts(store, "trials") == (3, 3) and counts(store, "dims") == (0, 0)
    assert sorted(isosweep.trials(str(store))["trial_key"]) == sorted(keys)


def test_a_dims_file_with_fewer_rows_than_counted_is_damaged(tmp_path, capsys):
    store = tmp_path / "store"
    keys = fabricate(store)
    path = store / "dims" / "study=toy" / f"{keys[1]}.parquet"
    pq.write_table(pq.read_table(path).slice(0, 2), path)
    out = status_of(store, capsys)
    assert f"toy smoke {keys[1]}: no readable dims rows" in out
    assert Store(str(store)).completed_keys() == {keys[0], keys[2]}


def test_rows_written_before_the_row_counts_need_dims_and_curves(tmp_path):
    """A trials row of an older version has no row counts: its dims and curves must be there
    (every ok trial has both); its points are not checked."""
    store = tmp_path / "store"
    keys = fabricate(store)
    for key in keys:
        path = store / "trials" / "study=toy" / f"{key}.parquet"
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(["dims_rows", "curves_rows", "points_rows"]), path)
    (store / "points" / "study=toy" / f"{keys[0]}.parquet").unlink()
    (store / "curves" / "study=toy" / f"{keys[1]}.parquet").unlink()
    states = Store(str(store)).trial_states()
    assert {k: s.missing for k, s in states.items()} == {keys[0]: (), keys[1]: ("curves",), keys[2]: ()}
    assert Store(str(store)).completed_keys() == {keys[0], keys[2]}


# -- wrong answers: a file of a foreign schema -----------------------------------------------


@pytest.mark.parametrize("table", ["trials", pytest.param("dims", marks=pytest.mark.slow)])
def test_a_foreign_parquet_file_is_unreadable_for_every_reader(tmp_path, capsys, table):
    store = tmp_path / "store"
    keys = fabricate(store)
    foreign = store / table / "study=toy" / "foreign.parquet"
    pq.write_table(pa.table({"foo": [1, 2], "bar": ["x", "y"]}), foreign)
    before = sha(foreign)

    assert counts(store, "trials") == (3, 3)  # not (4, 3): no all-null row
    assert counts(store, "dims") == (3 * DIMS_PER_TRIAL, 3)
    assert len(isosweep.trials(str(store))) == 3 and len(isosweep.dims(str(store))) == 3 * DIMS_PER_TRIAL
    out = status_of(store, capsys)
    assert out.splitlines()[2].split() == ["toy", "smoke", "90", "3", "0", "0", "87", "0"]
    assert f"  {foreign}" in out.splitlines()
    assert Store(str(store)).completed_keys() == set(keys)
    report = isosweep.report("toy", str(store), out=str(tmp_path / "report"))
    assert (report / "tables" / "trials.csv").read_text().splitlines()[1].endswith(",ok,3,3")

    assert main(["compact", "--store", str(store)]) == 2
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert line.startswith("isosweep: error: 1 unreadable file(s) left unmerged: ") and str(foreign) in line
    assert "delete them" in line
    # Every other file was merged, the foreign one left as it was, and nothing was lost.
    assert sha(foreign) == before
    for name in ("trials", "dims", "curves", "points"):
        files = sorted(p.name for p in (store / name / "study=toy").glob("*.parquet"))
        expected = 2 if name == table else 1
        assert len(files) == expected and sum(f.startswith("compact-") for f in files) == 1, (name, files)
    assert counts(store, "trials") == (3, 3) and counts(store, "dims") == (3 * DIMS_PER_TRIAL, 3)
    assert Store(str(store)).completed_keys() == set(keys)


# -- tracebacks instead of one line: a truncated trials file ---------------------------------


def test_report_over_a_truncated_trials_file_is_one_line(tmp_path, capsys):
    store = tmp_path / "store"
    keys = fabricate(store)
    victim = store / "trials" / "study=toy" / f"{keys[0]}.parquet"
    victim.write_bytes(victim.read_bytes()[:500])

    out = tmp_path / "report"
    proc = cli("report", "toy", "--store", str(store), "--out", str(out))
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert line.startswith(f"isosweep: error: store file {victim} is unreadable") and "delete it" in line
    assert not out.exists()

    for call in (
        lambda: isosweep.connect(str(store)),
        lambda: isosweep.report("toy", str(store), out=str(out)),
        lambda: isosweep.trials(str(store)),
    ):
        with pytest.raises(UsageError) as caught:
            call()
        assert str(victim) in str(caught.value) and "delete it" in str(caught.value)
    assert not out.exists()

    # status names the file and counts the trial missing; the plan trains it again.
    text = status_of(store, capsys)
    assert text.splitlines()[2].split() == ["toy", "smoke", "90", "2", "0", "0", "88", "0"]
    assert f"  {victim}" in text.splitlines()
    assert main(["run", *SWEEP, "--store", str(store), "--dry-run"]) == 0
    assert "2 already complete, 1 to run" in capsys.readouterr().out


def test_compact_leaves_a_damaged_file_in_place_and_merges_the_rest(tmp_path, capsys):
    store = tmp_path / "store"
    keys = fabricate(store)
    damaged = store / "dims" / "study=toy" / f"{keys[2]}.parquet"
    damaged.write_bytes(b"PAR1 this is not parquet")
    before = sha(damaged)

    assert main(["compact", "--store", str(store)]) == 2
    captured = capsys.readouterr()
    assert "compacted " in captured.out
    line = one_line(captured.err)
    assert str(damaged) in line and "left unmerged" in line
    assert sha(damaged) == before
    # The readable rows are merged and readable: 3 trials rows, the dims of the other two.
    merged = {name: pq.read_table(compacted_file(store, name)) for name in ("trials", "dims", "curves", "points")}
    assert merged["trials"].num_rows == 3
    assert sorted(set(merged["dims"]["trial_key"].to_pylist())) == sorted(keys[:2])
    assert merged["dims"].num_rows == 2 * DIMS_PER_TRIAL
    assert {p.name for p in (store / "dims" / "study=toy").iterdir()} == {
        compacted_file(store, "dims").name,
        damaged.name,
    }
    # The trial whose dims are unreadable is named as damaged, and planned again.
    out = status_of(store, capsys)
    assert f"toy smoke {keys[2]}: no readable dims rows" in out and f"  {damaged}" in out.splitlines()
    assert Store(str(store)).completed_keys() == set(keys[:2])


def test_a_damaged_file_on_s3_is_reported_by_status_and_left_by_compact(s3_server, capsys):
    url = "s3://isosweep-test/damaged"
    keys = fabricate(url)
    store = Store(url)
    damaged = store.file_path("dims", "toy", keys[0])
    store.fs.pipe_file(damaged, os.urandom(3000))

    assert main(["status", "--store", url]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2].split() == ["toy", "smoke", "90", "2", "0", "0", "1", "87", "0"]
    assert f"  {store.uri(damaged)}" in out.splitlines()
    assert main(["compact", "--store", url]) == 2
    line = one_line(capsys.readouterr().err)
    assert store.uri(damaged) in line and "left unmerged" in line
    assert len(store.fs.cat_file(damaged)) == 3000
    assert Store(url).completed_keys() == set(keys[1:])
