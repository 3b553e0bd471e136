"""Paths and numbers as a hostile user types them: ``~`` in a store, data-root or output path;
``--out`` onto a symbolic link, a device node, a pipe or a folder; the report's output inside the
store through the Python API; ``--where`` given twice; whole numbers beyond what the store holds.

Each case asserts its exit code, the one line (or the output), and that nothing was created,
removed or changed in its world but the output it was asked for (``run_case`` of the hostile
suite). ``HOME`` is a folder of the world, so ``~`` never reaches the real home folder.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support import make_store, snapshot
from test_hostile_inputs import Case, run_case

import isosweep
from helpers import EXE, cli_env
from isosweep.cli import main
from isosweep.errors import UsageError
from isosweep.store import Store
from isosweep.trainers.data import data_root

HUGE = "99999999999999999999"
"""An integer beyond 64 bits."""


def S(*parts: str) -> str:
    return "{W}/" + "/".join(parts)


STORE = S("store")
RUN = ("run", "toy", "--store", STORE)
DRY = (*RUN, "--dry-run")
Q = ("query", "select 1 as one", "--store", STORE, "--format", "csv", "--out")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """``store`` (3 fabricated toy trials), ``home`` (the cases' HOME, holding the store ``s``),
    ``cwd`` (the working folder), ``outside`` (a file, links to it and to nothing, a pipe, a
    folder) and report folders whose files or subfolders are links."""
    root = tmp_path_factory.mktemp("paths")
    make_store(root / "store")
    make_store(root / "home" / "s")
    (root / "cwd").mkdir()
    outside = root / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "target.csv").write_text("keep me\n")
    os.symlink(outside / "target.csv", outside / "link.csv")
    os.symlink(outside / "nothing.csv", outside / "dangling.csv")
    os.mkfifo(outside / "pipe")
    (root / "rep-file-link").mkdir()
    os.symlink(outside / "target.csv", root / "rep-file-link" / "report.md")
    (root / "rep-figure-link" / "figures").mkdir(parents=True)
    os.symlink(outside / "target.csv", root / "rep-figure-link" / "figures" / "old.png")
    (root / "rep-tables-link").mkdir()
    os.symlink(outside, root / "rep-tables-link" / "tables")
    return root


CASES: list[Case] = [
    # Whole numbers beyond the store's columns (seed is an int32 column): refused when parsed.
    Case(
        "where-seed-64bit",
        (*RUN, "--where", f"dataset=mix,lam=100,seed={HUGE}"),
        2,
        "--where seed='99999999999999999999': seeds must be at most 2,147,483,647",
    ),
    Case("where-seed-32bit", (*RUN, "--where", "seed=2147483648"), 2, "seeds must be at most 2,147,483,647"),
    Case("where-seed-largest", (*DRY, "--where", "dataset=mix,lam=100,seed=2147483647"), 0, "3 trials planned"),
    Case(
        "where-epochs-64bit",
        ("run", "anomaly", "--store", STORE, "--where", f"dataset=thyroid,epochs={HUGE}"),
        2,
        "epochs must be at most",
    ),
    Case(
        "seeds-64bit",
        (*DRY, "--seeds", HUGE, "--max-trials", HUGE),
        2,
        "argument --seeds: '99999999999999999999' must be at most 2,147,483,648",
    ),
    Case("max-trials-64bit", (*DRY, "--max-trials", HUGE), 2, "argument --max-trials"),
    Case("max-failures-64bit", (*DRY, "--max-failures", HUGE), 2, "argument --max-failures"),
    Case("max-concurrent-64bit", (*DRY, "--max-concurrent", HUGE), 2, "argument --max-concurrent"),
    # --where given twice: the keys add up; a key in both is refused.
    Case(
        "where-two-flags-add-up", (*DRY, "--where", "dataset=mix", "--where", "lam=100"), 0, "3 trials planned"
    ),  # dataset=mix alone plans 30, lam=100 alone 9
    Case(
        "where-key-in-two-flags",
        (*DRY, "--where", "dataset=mix,lam=100", "--where", "dataset=norm"),
        2,
        "--where names dataset twice; give its values once, separated by |",
    ),
    Case("where-seed-in-two-flags", (*DRY, "--where", "seed=1", "--where", "seed=2"), 2, "names seed twice"),
    Case("where-second-flag-empty", (*DRY, "--where", "dataset=mix", "--where", ""), 2, "--where is empty"),
    # --out onto what is not a regular file: refused, never replaced nor written through.
    Case(
        "out-link",
        (*Q, S("outside", "link.csv")),
        2,
        "is a symbolic link (to '{W}/outside/target.csv'), which isosweep never replaces nor writes through",
    ),
    Case("out-dangling-link", (*Q, S("outside", "dangling.csv")), 2, "is a symbolic link"),
    Case("out-pipe", (*Q, S("outside", "pipe")), 2, "is a device or other special file"),
    Case(
        "out-pipe-parquet",
        ("query", "select 1 as one", "--store", STORE, "--format", "parquet", "--out", S("outside", "pipe")),
        2,
        "is a device or other special file",
    ),
    Case("out-folder", (*Q, S("outside", "folder")), 2, "is a folder"),
    Case(
        "report-file-link",
        ("report", "toy", "--store", STORE, "--out", S("rep-file-link")),
        2,
        "its 'report.md' is a symbolic link",
    ),
    Case(
        "report-figure-link",
        ("report", "toy", "--store", STORE, "--out", S("rep-figure-link")),
        2,
        "its 'figures/old.png' is a symbolic link",
    ),
    Case(
        "report-tables-link",
        ("report", "toy", "--store", STORE, "--out", S("rep-tables-link")),
        2,
        "its 'tables' is a symbolic link",
    ),
    Case(
        "report-out-folder-file",
        ("report", "toy", "--store", STORE, "--out", S("outside", "target.csv")),
        2,
        "is a file, not a folder",
    ),
    # ~ means HOME ({W}/home) for the store and the output alike, or is refused.
    Case("tilde-store-status", ("status", "--store", "~/s"), 0, "toy    smoke   90       3 "),
    Case(
        "tilde-store-query",
        ("query", "select count(*) as n from trials", "--store", "~/s", "--format", "csv"),
        0,
        "n\n3",
    ),
    Case("tilde-store-dry-run", ("run", "toy", "--dry-run", "--store", "~/s"), 0, "3 already complete, 87 to run"),
    Case("tilde-out", (*Q, "~/r.csv"), 0, "", creates=("home/r.csv",)),
    Case(
        "tilde-out-inside-own-store",
        ("query", "select 1", "--store", "~/s", "--out", "~/s/r.csv"),
        2,
        "--out '{W}/home/s/r.csv' is inside the store '{W}/home/s'",
    ),
    Case(
        "tilde-report-inside-store",
        ("report", "toy", "--store", "~/s", "--out", "~/s/rep"),
        2,
        "is inside the store '{W}/home/s'",
    ),
    Case(
        "tilde-unknown-user-store",
        ("status", "--store", "~no-such-user-here/s"),
        2,
        "store '~no-such-user-here/s': user 'no-such-user-here' is unknown on this machine",
    ),
    Case("tilde-unknown-user-out", (*Q, "~no-such-user-here/r.csv"), 2, "--out '~no-such-user-here/r.csv'"),
    Case(
        "tilde-unknown-user-data-root",
        ("run", "anomaly", "--where", "dataset=thyroid", "--data-root", "~no-such-user-here/data", "--store", STORE),
        2,
        "--data-root '~no-such-user-here/data': user 'no-such-user-here' is unknown",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_path(case: Case, world: Path, capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(world / "home"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path))  # matplotlib's font cache: not isosweep's output
    case = Case(case.id, case.argv, case.code, case.needle.replace("{W}", str(world)), case.sql, case.creates)
    run_case(case, world, capsys, monkeypatch)
    for created in case.creates:
        (world / created).unlink()
    assert (world / "outside" / "link.csv").is_symlink() and (
        world / "outside" / "target.csv"
    ).read_text() == "keep me\n"
    assert stat.S_ISFIFO(os.lstat(world / "outside" / "pipe").st_mode)
    assert not (world / "cwd" / "~").exists()


def test_out_onto_a_device_node_is_refused(world: Path, tmp_path: Path, capsys) -> None:
    """A character device like /dev/null (made here, never the real one): refused, left a device."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    code = main(["query", "select 1", "--store", str(world / "store"), "--out", str(node)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert f"--out {str(node)!r} is a device or other special file" in err
    assert stat.S_ISCHR(os.lstat(node).st_mode) and os.listdir(tmp_path) == ["null"]


def test_tilde_in_the_environment(world: Path, capsys, monkeypatch) -> None:
    """ISOSWEEP_STORE and ISOSWEEP_DATA expand ``~`` as the flags do; the store's url (which the
    driver hands to Ray's workers and DuckDB) is the expanded path."""
    monkeypatch.setenv("HOME", str(world / "home"))
    assert Store("~/x").url == str(world / "home" / "x") and Store("~").url == str(world / "home")
    assert Store("./~/x").url == "./~/x" and Store("a~b").url == "a~b"  # a ~ elsewhere is a character
    monkeypatch.chdir(world / "cwd")
    monkeypatch.setenv("ISOSWEEP_STORE", "~/s")
    assert main(["status"]) == 0
    assert "toy    smoke   90       3 " in capsys.readouterr().out
    monkeypatch.setenv("ISOSWEEP_DATA", "~/data")
    assert data_root() == str(world / "home" / "data")
    monkeypatch.setenv("ISOSWEEP_DATA", "~no-such-user-here/data")
    with pytest.raises(UsageError, match="ISOSWEEP_DATA '~no-such-user-here/data'"):
        data_root()
    assert os.listdir(world / "cwd") == []


def test_the_api_refuses_a_report_inside_the_store(world: Path, monkeypatch, tmp_path: Path) -> None:
    """isosweep.report(out=...) refuses the inside of the store, as ``isosweep report`` does,
    before anything is written; ``~`` works in the API's store and output paths too."""
    monkeypatch.setenv("HOME", str(world / "home"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path))
    before = snapshot(world)
    store = world / "store"
    for out in (store, store / "trials" / "report", store / "new"):
        with pytest.raises(UsageError, match="is inside the store"):
            isosweep.report("toy", store, out=out)
    with pytest.raises(UsageError, match="is inside the store"):
        isosweep.report("toy", "~/s", out="~/s/report")
    with pytest.raises(UsageError, match="its 'report.md' is a symbolic link"):
        isosweep.report("toy", store, out=world / "rep-file-link")
    assert snapshot(world) == before
    assert len(isosweep.trials("~/s")) == 3


@pytest.mark.slow  # a real Ray sweep of 3 trials: 40-90 s
def test_a_run_with_a_tilde_store_writes_under_home(tmp_path: Path) -> None:
    """``run --store '~/x'`` on real Ray: the tables and Ray's state go to $HOME/x, nothing to a
    folder named ``~`` in the working folder; status and the API then see the trials."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    env = {**cli_env(), "HOME": str(home)}
    proc = subprocess.run(
        [EXE, "run", "toy", "--where", "dataset=mix,lam=100", "--store", "~/x"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok 3, failed 0, diverged 0, missing 0 of 3" in proc.stdout
    assert f"store {home / 'x'}" in proc.stdout
    assert os.listdir(cwd) == []
    # Ray keeps a token of its own in ~/.ray; isosweep writes only the store.
    assert sorted(p for p in os.listdir(home) if p != ".ray") == ["x"]
    assert (home / "x" / "ray" / "toy-smoke").is_dir()
    assert len(list((home / "x" / "trials" / "study=toy").glob("*.parquet"))) >= 1
    status = subprocess.run(
        [EXE, "status", "--store", "~/x"], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )
    assert status.returncode == 0 and "toy    smoke   90       3 " in status.stdout, status.stdout + status.stderr
    counted = subprocess.run(
        [sys.executable, "-c", "import isosweep; print(len(isosweep.trials('~/x')))"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert counted.stdout.strip() == "3", counted.stderr
    assert os.listdir(cwd) == []


@pytest.mark.slow  # a report
def test_a_report_to_a_tilde_folder_goes_under_home(world: Path, capsys, monkeypatch, tmp_path: Path) -> None:
    """``report --out '~/rep'`` writes $HOME/rep, and again over its own regular files; nothing
    else changes."""
    monkeypatch.setenv("HOME", str(world / "home"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path))
    monkeypatch.chdir(world / "cwd")
    before = snapshot(world)
    for _ in range(2):
        assert main(["report", "toy", "--store", str(world / "store"), "--out", "~/rep"]) == 0
        assert capsys.readouterr().out.startswith(f"{world / 'home' / 'rep'}: report.md, report.html")
    after = snapshot(world)
    written = sorted(p for p in after if p not in before)
    assert str(world / "home" / "rep" / "report.md") in written
    assert all(p.startswith(str(world / "home" / "rep")) for p in written), written
    assert {p: after[p] for p in before} == before
    shutil.rmtree(world / "home" / "rep")
