"""The hostile-input suite (issue 15): one table of bad inputs and odd paths, each run in process
through ``isosweep.cli.main``.

Every case asserts its exit code; that stderr is empty (exit 0) or exactly one line without a
traceback; and that nothing was created, removed or changed anywhere in the case's world (the
store, its siblings, the data, the working folder and the folder beside them), byte for byte. The
SQL cases also assert that no byte of the secrets beside the store reached the output, and
``test_sql_cases_open_nothing_outside_the_store`` runs all of them once more under strace, to
check that no file outside the store was even opened.

Items of the issue are named in each case's id (``i1`` ... ``i11``); ``ok`` marks cases that
already worked, kept so that they stay working.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from anomaly_files import write_anomaly_files
from support import make_store, snapshot

from helpers import EXE
from isosweep.cli import main

SECRET = "hostile-canary-7f3a"
"""A token written only outside the store: no query output may ever hold it."""


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    code: int
    needle: str = ""
    """Text that stderr (exit != 0) or stdout (exit 0) holds."""
    sql: bool = False
    creates: tuple[str, ...] = field(default=())
    """Paths (relative to the world) that the case is meant to create; nothing else may change."""


def build_world(root: Path) -> Path:
    """The folders every case runs among: ``store`` (3 fabricated toy trials), ``cwd`` (the
    working folder, holding ``.tmp`` -> ``/`` as in the issue), ``outside`` (secrets), stores with
    links and with glob characters in their names, data roots with broken files."""
    make_store(root / "store")
    (root / "outside").mkdir()
    (root / "outside" / "secret.csv").write_text(f"token\n{SECRET}\n")
    (root / "outside" / "secret.parquet").write_bytes(b"PAR1" + SECRET.encode() + b"PAR1")
    (root / "cwd").mkdir()
    os.symlink("/", root / "cwd" / ".tmp")
    os.symlink(root / "outside", root / "cwd" / "outside-link")
    # A store with a symbolic link among its table files, one with a link in artifacts/.
    make_store(root / "linked")
    os.symlink("/", root / "linked" / "trials" / "study=toy" / "root")
    make_store(root / "artlink")
    (root / "artlink" / "artifacts").mkdir()
    os.symlink(root / "outside", root / "artlink" / "artifacts" / "out")
    # A link to a whole store: its path passes through a link, which is resolved.
    os.symlink(root / "store", root / "store-link")
    # Siblings whose names are globs of each other (issue item 1).
    make_store(root / "globs" / "sA", trials=6)
    for name in ("s*", "s?", "s[A]"):
        make_store(root / "globs" / name, trials=1)
    # Data roots: a truncated, a damaged and a malformed KDDCup file, and a file of your own.
    good = write_anomaly_files(root / "data-good", kdd_rows_n=300)
    raw = (good / "kddcup99" / "kddcup.data_10_percent.gz").read_bytes()
    for name, data in (
        ("truncated", raw[: len(raw) // 2]),
        ("crc", raw[:-8] + bytes(b ^ 0xFF for b in raw[-8:-4]) + raw[-4:]),
        ("badrow", gzip.compress(gzip.decompress(raw).replace(b"\n", b"\n1,2,3\n", 1))),
        ("nolabel", gzip.compress(gzip.decompress(raw).replace(b".\n", b"\n", 1))),
        ("empty", gzip.compress(b"")),
    ):
        (root / f"data-{name}" / "kddcup99").mkdir(parents=True)
        (root / f"data-{name}" / "kddcup99" / "kddcup.data_10_percent.gz").write_bytes(data)
    (root / "csv").mkdir()
    (root / "csv" / "dup.csv").write_text("a,a,p\n1,2,0.1\n3,4,0.2\n5,6,0.3\n")
    (root / "csv" / "nan.csv").write_text("a,b,p\n1,2,0.1\n3,,0.2\n5,6,0.3\n")
    (root / "csv" / "text.csv").write_text("a,b,p\n1,2,0.1\n3,x,0.2\n5,6,0.3\n")
    (root / "csv" / "empty.csv").write_text("")
    (root / "csv" / "one.csv").write_text("a,b\n1,2\n")
    (root / "a-file").write_text("not a folder")
    return root


def S(*parts: str) -> str:
    """A placeholder for a path in the world, filled in when the case runs."""
    return "{W}/" + "/".join(parts)


STORE = S("store")
MISSING = S("missing")
RUN = ("run", "toy", "--store", STORE)
DRY = (*RUN, "--dry-run")
Q = ("query",)

REFUSED_SQL = [
    # item 2: DuckDB's temp folder $PWD/.tmp (here a link to /) and links inside the store
    ("i2-tmp-passwd", "select * from read_csv('.tmp/etc/passwd', sep=':', header=false)", "is outside it"),
    ("i2-tmp-glob", "select * from glob('.tmp/*')", "is outside it"),
    ("i2-tmp-abs", "select * from read_text('{W}/cwd/.tmp/etc/hostname')", "is outside it"),
    ("i2-link-in-cwd", "select * from read_csv('outside-link/secret.csv')", "is outside it"),
    ("i2-store-dotdot", "select * from read_csv('{W}/store/trials/../../outside/secret.csv')", "is outside it"),
    ("i2-store-dotdot-parquet", "select * from read_parquet('{W}/store/../outside/secret.parquet')", "is outside it"),
    ("i2-artifacts", "select * from glob('{W}/store/artifacts/*')", "is outside it"),
    ("i2-store-root", "select * from glob('{W}/store/*')", "is outside it"),
    ("i2-ray-folder", "select * from read_text('{W}/store/ray/x')", "is outside it"),
    # statements that write or change the database (these already worked)
    ("ok-copy", "copy (select * from trials) to 'out.csv'", "refuses COPY"),
    ("ok-copy-into-store", "copy (select 1) to '{W}/store/trials/x.parquet' (format parquet)", "refuses COPY"),
    ("ok-copy-from", "copy trials from '{W}/outside/secret.csv'", "refuses COPY"),
    ("ok-export", "export database 'dump'", "refuses EXPORT"),
    ("ok-attach", "attach 'other.duckdb' as other", "refuses ATTACH"),
    ("ok-install", "install httpfs", "refuses LOAD"),
    ("ok-load", "load httpfs", "refuses LOAD"),
    ("ok-create", "create table t as select * from trials", "refuses CREATE"),
    ("ok-create-secret", "create secret s (type s3, key_id 'k', secret 's')", "refuses CREATE"),
    ("ok-insert", "insert into trials select * from trials", "refuses INSERT"),
    ("ok-update", "update trials set seed = 1", "refuses UPDATE"),
    ("ok-delete", "delete from trials", "refuses DELETE"),
    ("ok-drop", "drop view trials", "refuses DROP"),
    ("ok-pragma", "pragma enable_profiling", "refuses PRAGMA"),
    ("ok-set-external", "set enable_external_access = true", "refuses SET"),
    ("ok-set-temp", "set temp_directory = '{W}/outside'", "refuses SET"),
    ("ok-set-allowed", "set allowed_directories = ['/']", "refuses SET"),
    ("ok-reset", "reset lock_configuration", "refuses SET"),
    ("ok-call", "call pragma_version()", "refuses CALL"),
    ("ok-checkpoint", "checkpoint", "refuses CALL"),
    ("ok-two-statements", "select 1; copy (select 1) to 'two.csv'", "holds 2 statements"),
    ("ok-pivot-no-in", "pivot trials on loss using count(*)", "PIVOT without an IN list"),
    ("ok-explain-analyze", "explain analyze copy (select 1) to 'ea.csv'", "refuses EXPLAIN"),
    ("ok-empty", "   ", "is empty"),
    # reads of files outside the store (these already worked)
    ("ok-passwd", "select * from read_csv('/etc/passwd')", "is outside it"),
    ("ok-secret-relative", "select * from read_csv('../outside/secret.csv')", "is outside it"),
    ("ok-secret-abs", "select * from read_text('{W}/outside/secret.csv')", "is outside it"),
    ("ok-environ", "select * from read_blob('/proc/self/environ')", "is outside it"),
    ("ok-glob-root", "select * from glob('/*')", "is outside it"),
    ("ok-glob-cwd", "select * from glob('*')", "is outside it"),
    ("ok-nested-query", "select * from query('select * from read_csv(''/etc/passwd'')')", "is outside it"),
    (
        "ok-parquet-list",
        "select * from read_parquet(['{W}/store/trials/*/*.parquet', '{W}/outside/secret.parquet'])",
        "is outside it",
    ),
    ("ok-json", "select * from read_json('/etc/os-release')", "is outside it"),
    # item 1: a glob that would expand into a sibling store
    ("i1-sibling-glob", "select count(*) from read_parquet('{W}/globs/s*/trials/*/*.parquet')", "is outside it"),
    # item 11: DuckDB's advice to change a setting that isosweep refuses
    ("i11-depth-hint", "select " + "(" * 1100 + "1" + ")" * 1100, "cannot change DuckDB's settings"),
    # item 7: bounded work
    ("i7-timeout-range", "select sum(i::double * i) from range(1000000000000) t(i)", "--timeout"),
    (
        "i7-timeout-recursive",
        "with recursive r(n) as (select 1 union all select n + 1 from r) select count(*) from r",
        "--timeout",
    ),
]

CASES: list[Case] = [
    *[
        Case(
            f"sql-{name}",
            (*Q, sql, "--store", STORE, "--timeout", "2" if name.startswith("i7") else "300"),
            2,
            needle,
            sql=True,
        )
        for name, sql, needle in REFUSED_SQL
    ],
    # -- item 1: store paths with glob characters are literal
    Case(
        "i1-dry-run-star", ("run", "toy", "--dry-run", "--store", S("globs", "s*")), 0, "1 already complete, 89 to run"
    ),
    Case("i1-dry-run-question", ("run", "toy", "--dry-run", "--store", S("globs", "s?")), 0, "1 already complete"),
    Case("i1-dry-run-class", ("run", "toy", "--dry-run", "--store", S("globs", "s[A]")), 0, "1 already complete"),
    Case("i1-status-star", ("status", "--store", S("globs", "s*")), 0, "toy    smoke   90       1 "),
    Case(
        "i1-query-star",
        (*Q, "select count(*) as n from trials", "--store", S("globs", "s*"), "--format", "csv"),
        0,
        "n\n1",
        sql=True,
    ),
    Case(
        "i1-query-class",
        (*Q, "select count(*) as n from trials", "--store", S("globs", "s[A]"), "--format", "csv"),
        0,
        "n\n1",
        sql=True,
    ),
    Case(
        "i1-query-sibling",
        (*Q, "select count(*) as n from trials", "--store", S("globs", "sA"), "--format", "csv"),
        0,
        "n\n6",
        sql=True,
    ),
    # -- item 2: links
    Case("i2-link-in-store", (*Q, "select count(*) from trials", "--store", S("linked")), 2, "symbolic link", sql=True),
    Case(
        "i2-link-glob",
        (*Q, "select * from glob('{W}/linked/*/root/*')", "--store", S("linked")),
        2,
        "symbolic link",
        sql=True,
    ),
    Case(
        "i2-link-in-artifacts",
        (*Q, "select * from glob('{W}/artlink/artifacts/out/*')", "--store", S("artlink")),
        2,
        "is outside it",
        sql=True,
    ),
    Case(
        "i2-link-in-artifacts-ok",
        (*Q, "select count(*) as n from trials", "--store", S("artlink"), "--format", "csv"),
        0,
        "n\n3",
        sql=True,
    ),
    Case(
        "i2-store-through-link",
        (*Q, "select count(*) as n from trials", "--store", S("store-link"), "--format", "csv"),
        0,
        "n\n3",
        sql=True,
    ),
    Case(
        "i2-store-own-files",
        (
            *Q,
            "select count(*) as n from read_parquet('{W}/store/trials/*/*.parquet')",
            "--store",
            STORE,
            "--format",
            "csv",
        ),
        0,
        "n\n3",
        sql=True,
    ),
    # -- item 4: --name is a plain name
    Case("i4-name-escape", (*RUN, "--name", "../../escape"), 2, "not a plain name"),
    Case("i4-name-slash", (*RUN, "--name", "a/b"), 2, "not a plain name"),
    Case("i4-name-dotdot", (*RUN, "--name", ".."), 2, "not a plain name"),
    Case("i4-name-hidden", (*RUN, "--name", ".hidden"), 2, "not a plain name"),
    Case("i4-name-empty", (*RUN, "--name", ""), 2, "not a plain name"),
    Case("i4-name-abs", (*RUN, "--name", "/tmp/x"), 2, "not a plain name"),
    Case("i4-name-long", (*RUN, "--name", "x" * 101), 2, "not a plain name"),
    Case("i4-resume-escape", ("resume", "../x", "--store", STORE), 2, "not a plain name"),
    Case("i4-name-ok", (*DRY, "--name", "my-sweep_1.a"), 0, "my-sweep_1.a: 90 trials planned"),
    # -- item 5: query --out never inside the store
    Case(
        "i5-out-trial-file",
        (
            *Q,
            "select 1",
            "--store",
            STORE,
            "--format",
            "parquet",
            "--out",
            S("store", "trials", "study=toy", "x.parquet"),
        ),
        2,
        "inside the store",
    ),
    Case("i5-out-csv", (*Q, "select 1", "--store", STORE, "--out", S("store", "result.csv")), 2, "inside the store"),
    Case("i5-out-store-itself", (*Q, "select 1", "--store", STORE, "--out", STORE), 2, "inside the store"),
    Case(
        "i5-out-through-link",
        (*Q, "select 1", "--store", STORE, "--out", S("store-link", "r.csv")),
        2,
        "inside the store",
    ),
    Case("i5-out-url", (*Q, "select 1", "--store", STORE, "--out", "s3://bucket/r.csv"), 2, "local file path"),
    Case("i5-out-folder", (*Q, "select 1", "--store", STORE, "--out", S("outside")), 2, "is a folder"),
    Case(
        "i5-report-out-in-store",
        ("report", "toy", "--store", STORE, "--out", S("store", "report")),
        2,
        "inside the store",
    ),
    Case(
        "i5-out-ok",
        (*Q, "select 1 as one", "--store", STORE, "--format", "csv", "--out", S("cwd", "r.csv")),
        0,
        sql=True,
        creates=("cwd/r.csv",),
    ),
    # -- item 6: resources that can never be met
    Case("i6-gpus-inf", (*RUN, "--gpus-per-trial", "inf"), 2, "finite number"),
    Case("i6-gpus-nan", (*RUN, "--gpus-per-trial", "nan"), 2, "finite number"),
    Case("i6-gpus-huge", (*RUN, "--gpus-per-trial", "1e309"), 2, "finite number"),
    Case("i6-gpus-negative", (*RUN, "--gpus-per-trial", "-1"), 2, "finite number"),
    Case("i6-gpus-fraction-above-one", (*RUN, "--gpus-per-trial", "1.5"), 2, "whole numbers"),
    Case("i6-cpus-64", (*RUN, "--cpus-per-trial", "64"), 2, "more than this machine's"),
    Case("i6-cpus-zero", (*RUN, "--cpus-per-trial", "0"), 2, "at least 1"),
    Case("i6-cpus-fraction", (*RUN, "--cpus-per-trial", "0.5"), 2, "not a whole number"),
    # -- item 7: bounded work
    Case("i7-seeds-huge", (*DRY, "--seeds", "100000000"), 2, "--max-trials"),
    Case("i7-max-trials-low", (*DRY, "--max-trials", "50"), 2, "--max-trials 90"),
    Case("i7-max-trials-ok", (*DRY, "--max-trials", "90"), 0, "90 trials planned"),
    Case(
        "i7-search-huge",
        (
            "run",
            "anomaly",
            "--search",
            "optuna",
            "--num-samples",
            "100000000",
            "--where",
            "dataset=thyroid",
            "--dry-run",
            "--store",
            STORE,
        ),
        2,
        "--max-trials",
    ),
    Case("i7-timeout-zero", (*Q, "select 1", "--store", STORE, "--timeout", "0"), 2, "more than 0 seconds"),
    Case("i7-timeout-negative", (*Q, "select 1", "--store", STORE, "--timeout", "-1"), 2, "finite number"),
    Case("i7-timeout-text", (*Q, "select 1", "--store", STORE, "--timeout", "soon"), 2, "not a number"),
    # -- item 8: every data file checked before anything starts
    Case(
        "i8-kdd-truncated",
        ("run", "anomaly", "--where", "dataset=kddcup", "--data-root", S("data-truncated"), "--store", MISSING),
        2,
        "broken gzip data",
    ),
    Case(
        "i8-kdd-crc",
        ("run", "anomaly", "--where", "dataset=kddcup_rev", "--data-root", S("data-crc"), "--store", MISSING),
        2,
        "broken gzip data",
    ),
    Case(
        "i8-kdd-bad-row",
        ("run", "anomaly", "--where", "dataset=kddcup", "--data-root", S("data-badrow"), "--store", MISSING),
        2,
        "has 3 fields",
    ),
    Case(
        "i8-kdd-no-label",
        ("run", "anomaly", "--where", "dataset=kddcup", "--data-root", S("data-nolabel"), "--store", MISSING),
        2,
        "does not end in '.'",
    ),
    Case(
        "i8-kdd-empty",
        ("run", "anomaly", "--where", "dataset=kddcup", "--data-root", S("data-empty"), "--store", MISSING),
        2,
        "is empty",
    ),
    Case(
        "i8-thyroid-missing",
        ("run", "anomaly", "--where", "dataset=thyroid", "--data-root", S("data-truncated"), "--store", MISSING),
        2,
        "not found",
    ),
    Case("i8-no-data-root", ("run", "anomaly", "--where", "dataset=thyroid", "--store", MISSING), 2, "--data-root"),
    Case(
        "i8-kdd-good",
        ("run", "anomaly", "--where", "dataset=kddcup", "--data-root", S("data-good"), "--dry-run", "--store", MISSING),
        0,
        "0 already complete",
    ),
    # -- item 9: one line, not a traceback
    Case(
        "i9-csv-duplicate-columns",
        ("run", "custom", "--data", S("csv", "dup.csv"), "--store", MISSING),
        2,
        "appears 2 times",
    ),
    Case(
        "i9-out-missing-folder",
        (*Q, "select 1", "--store", STORE, "--out", "/nonexistent/dir/x.csv"),
        2,
        "does not exist",
    ),
    Case("ok-csv-nan", ("run", "custom", "--data", S("csv", "nan.csv"), "--store", MISSING), 2, "csv"),
    Case("ok-csv-text", ("run", "custom", "--data", S("csv", "text.csv"), "--store", MISSING), 2, "csv"),
    Case("ok-csv-empty", ("run", "custom", "--data", S("csv", "empty.csv"), "--store", MISSING), 2, "is empty"),
    Case("ok-csv-missing", ("run", "custom", "--data", S("csv", "nope.csv"), "--store", MISSING), 2, "no such file"),
    # -- item 10: a store that does not exist is not created, nor read as empty
    Case("i10-resume-missing", ("resume", "toy-smoke", "--store", MISSING), 2, "does not exist"),
    Case("i10-compact-missing", ("compact", "--store", MISSING), 2, "does not exist"),
    Case("i10-query-missing", (*Q, "select count(*) from trials", "--store", MISSING), 2, "does not exist", sql=True),
    Case("i10-status-missing", ("status", "--store", MISSING), 2, "does not exist"),
    Case("i10-report-missing", ("report", "toy", "--store", MISSING), 2, "does not exist"),
    Case("i10-dry-run-missing", ("run", "toy", "--dry-run", "--store", MISSING), 0, "0 already complete"),
    # -- item 11: nothing silently surprising
    Case("i11-where-twice", (*RUN, "--where", "dataset=mix,dataset=norm"), 2, "names dataset twice"),
    Case("i11-where-empty", (*RUN, "--where", ""), 2, "--where is empty"),
    Case("i11-where-blank", (*RUN, "--where", "  "), 2, "--where is empty"),
    Case("i11-where-equals", (*RUN, "--where", "="), 2, "has no key"),
    Case("i11-where-no-key", (*RUN, "--where", "=mix"), 2, "has no key"),
    Case("i11-where-trailing-comma", (*RUN, "--where", "dataset=mix,"), 2, "is not K=V"),
    Case("i11-named-abs-path", (*Q, "@/etc/passwd", "--store", STORE), 2, "unknown named query"),
    Case("i11-named-relative", (*Q, "@../sql/toy_summary", "--store", STORE), 2, "unknown named query"),
    Case("i11-named-suffix", (*Q, "@toy_summary.sql", "--store", STORE), 2, "unknown named query"),
    # -- bad usage that already gave one line
    Case("ok-unknown-study", ("run", "toys", "--store", STORE), 2, "unknown study 'toys'"),
    Case("ok-unknown-budget", (*RUN, "--budget", "huge"), 2, "unknown budget"),
    Case("ok-seeds-zero", (*RUN, "--seeds", "0"), 2, "at least 1"),
    Case("ok-fuse", (*RUN, "--fuse", "x"), 2, "--fuse"),
    Case("ok-where-axis", (*RUN, "--where", "colour=red"), 2, "is not an axis"),
    Case("ok-where-value", (*RUN, "--where", "dataset=circle"), 2, "is not a value"),
    Case("ok-where-negative", (*RUN, "--where", "lam=-5"), 2, "must be a positive"),
    Case("ok-where-inf", (*RUN, "--where", "lam=inf"), 2, "must be a positive"),
    Case("ok-where-seed", (*RUN, "--where", "seed=-1"), 2, "non-negative"),
    Case("ok-max-failures", (*RUN, "--max-failures", "-1"), 2, "--max-failures"),
    Case("ok-address", (*RUN, "--address", "no-port"), 2, "HOST:PORT"),
    Case("ok-store-is-file", ("run", "toy", "--store", S("a-file")), 2, "is a file"),
    Case(
        "ok-search-other-study",
        ("run", "toy", "--search", "optuna", "--num-samples", "2", "--store", STORE),
        2,
        "search",
    ),
    Case("ok-num-samples-alone", ("run", "anomaly", "--num-samples", "3", "--store", STORE), 2, "--search optuna"),
    Case("ok-data-on-toy", (*RUN, "--data", S("csv", "one.csv")), 2, "applies to studies"),
    Case("ok-custom-without-data", ("run", "custom", "--store", STORE), 2, "--data FILE"),
    Case("ok-unknown-command", ("frobnicate",), 2, "invalid choice"),
    Case("ok-parquet-without-out", (*Q, "select 1", "--store", STORE, "--format", "parquet"), 2, "needs --out"),
    Case("ok-unknown-named", (*Q, "@no_such_query", "--store", STORE), 2, "unknown named query"),
    Case("ok-query-failed", (*Q, "select * from nowhere", "--store", STORE), 2, "query failed", sql=True),
    Case("ok-report-unknown", ("report", "toys", "--store", STORE), 2, "unknown study"),
    Case("ok-resume-unknown", ("resume", "nope", "--store", STORE), 2, "no sweep named 'nope'"),
    Case("ok-status", ("status", "--store", STORE), 0, "toy    smoke   90       3 "),
    Case(
        "ok-query", (*Q, "select count(*) as n from trials", "--store", STORE, "--format", "csv"), 0, "n\n3", sql=True
    ),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return build_world(tmp_path_factory.mktemp("hostile"))


def fill(arg: str, world: Path) -> str:
    return arg.replace("{W}", str(world))


def run_case(case: Case, world: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(world / "cwd")
    for name in ("ISOSWEEP_STORE", "ISOSWEEP_DATA"):
        monkeypatch.delenv(name, raising=False)
    before = snapshot(world)
    code = main([fill(a, world) for a in case.argv])
    out, err = capsys.readouterr()
    assert code == case.code, f"exit {code}, expected {case.code}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in err and "Traceback" not in out
    if case.code == 0:
        assert err == "", err
        assert case.needle in out, out
    else:
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("isosweep: ") and case.needle in err, err
    after = snapshot(world)
    for created in case.creates:
        assert after.pop(str(world / created), None) is not None, f"{created} was not written"
    assert after == before  # nothing created, removed or changed, byte for byte
    if case.sql:
        assert SECRET not in out and SECRET not in err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, world: Path, capsys, monkeypatch) -> None:
    run_case(case, world, capsys, monkeypatch)
    for created in case.creates:
        (world / created).unlink()


def test_the_table_covers_every_item_and_has_80_cases() -> None:
    assert len(CASES) >= 80
    items = {c.id.split("-")[0] if not c.id.startswith("sql-") else c.id.split("-")[1] for c in CASES}
    # Item 3 (two drivers) is tests/hostile/test_concurrent_drivers.py; item 9's Ctrl-C cases are below.
    assert {f"i{n}" for n in (1, 2, 4, 5, 6, 7, 8, 9, 10, 11)} <= items


STRACE_SCRIPT = """
import sys
from isosweep.cli import main
for sql in sys.argv[2:]:
    main(["query", sql, "--store", sys.argv[1], "--timeout", "2"])
"""


@pytest.mark.slow  # every SQL case under strace
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_sql_cases_open_nothing_outside_the_store(world: Path, tmp_path: Path) -> None:
    """Every SQL case of the table, run in one process under strace: no system call that names a
    path (open, stat, readlink, ...) names one outside the store, but for the Python and system
    files every process opens."""
    sqls = [fill(sql, world) for _, sql, _ in REFUSED_SQL if not _.startswith("i7")]
    log = tmp_path / "strace.log"
    proc = subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=%file",
            "-o",
            str(log),
            sys.executable,
            "-c",
            STRACE_SCRIPT,
            str(world / "store"),
            *sqls,
        ],
        cwd=world / "cwd",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("isosweep: error:") == len(sqls)
    # DuckDB resolves the links of a path it is asked for (readlink) before it checks the path
    # against its allowed folders; that reads no file. Any other call (open, stat, access, ...)
    # on a path outside the store would.
    touched = [
        line
        for line in log.read_text().splitlines()
        if not re.match(r"\d+\s+(execve|readlink)\(", line)
        and any(
            secret in line
            for secret in (
                str(world / "outside"),
                "/etc/passwd",
                "/etc/hostname",
                "/etc/os-release",
                "/proc/self/environ",
                "secret.csv",
                "secret.parquet",
                ".tmp/etc",
                str(world / "globs" / "sA"),
            )
        )
    ]
    assert touched == [], touched[:5]
    assert any("readlink" in line and "secret.csv" in line for line in log.read_text().splitlines())  # the log is real


CTRL_C_ANSWERS = {
    "isosweep: interrupted while starting; nothing was done",
    "isosweep: interrupted",
    "isosweep: query interrupted; nothing was written",
}
"""What `isosweep query` may say to Ctrl-C, by how far it got: importing, reading its arguments, or
listing the store and querying."""


def sigint_as_in_a_terminal() -> None:
    """In the child before it runs: SIGINT at its default, as a terminal starts a command. A suite
    started in the background by a non-interactive shell would otherwise hand on SIGINT ignored,
    and isosweep leaves an ignored SIGINT ignored."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


# Three delays in the fast tier (importing, starting DuckDB, in the query); every 0.1 s of the start
# in the slow one.
CTRL_C_DELAYS = [0.3 + 0.1 * i for i in range(14)] + [3.0]
FAST_DELAYS = (0.3, 0.9, 1.5)


@pytest.mark.parametrize(
    "delay",
    [
        pytest.param(d, marks=() if any(abs(d - f) < 1e-9 for f in FAST_DELAYS) else pytest.mark.slow)
        for d in CTRL_C_DELAYS
    ],
    ids=lambda d: f"{d:.1f}s",
)
def test_ctrl_c_during_a_query_is_one_line(world: Path, delay: float) -> None:
    """SIGINT at any moment of a long query (importing, listing the store, starting DuckDB, in the
    query): it stops at once, one line, exit 130, nothing written. The delays sweep over the whole
    start, where a Ctrl-C once went missing and left the query running."""
    import signal
    import time

    before = snapshot(world)
    # PYTHONFAULTHANDLER: if it hangs, SIGABRT makes it print every thread's stack for the report.
    proc = subprocess.Popen(
        [
            EXE,
            "query",
            "select sum(i::double * i) from range(1000000000000) t(i)",
            "--store",
            str(world / "store"),
        ],
        cwd=world / "cwd",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        preexec_fn=sigint_as_in_a_terminal,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        out, err = proc.communicate()
        pytest.fail(f"no exit 30 s after Ctrl-C at {delay:.1f} s; its threads:\n{err}")
    assert proc.returncode == 130, err
    assert err.strip() in CTRL_C_ANSWERS and out == "", err
    assert snapshot(world) == before
