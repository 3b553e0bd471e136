"""`isosweep query` is read-only: it runs one SELECT over the store and touches no other file."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
import pytest

from helpers import write_trial
from isosweep.cli import main
from isosweep.store import Store
from isosweep.trainers.config import TrialConfig


def write_toy_trial(store: Store, seed: int) -> str:
    """One fabricated ok trial of the toy study (its rows, not its science, matter here)."""
    return write_trial(
        store, TrialConfig(study="toy", budget="smoke", dataset="mix", loss="se", seed=seed, latent_dim=3, lam=100.0)
    )


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A small local store, the working folder beside it (where relative paths in SQL land), and
    a file outside the store that no query may read."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "store"
    for seed in (0, 1):
        write_toy_trial(Store(str(path)), seed)
    (tmp_path / "secret.csv").write_text("token\n42\n")
    return path


def snapshot(root: Path) -> dict[str, tuple[int, float]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime) for p in root.rglob("*")}


REFUSED = [
    # Statements that write files or change the database.
    ("copy (select * from trials) to 'out.csv'", "refuses COPY"),
    ("copy (select * from trials) to 'store/trials/x.parquet' (format parquet)", "refuses COPY"),
    ("copy trials from 'secret.csv'", "refuses COPY"),
    ("export database 'dump'", "refuses EXPORT"),
    ("import database 'dump'", "refuses PRAGMA"),
    ("attach 'other.duckdb' as other", "refuses ATTACH"),
    ("detach memory", "refuses DETACH"),
    ("install httpfs", "refuses LOAD"),
    ("load httpfs", "refuses LOAD"),
    ("create table t as select * from trials", "refuses CREATE"),
    ("create or replace view trials as select 1", "refuses CREATE"),
    ("create secret s (type s3, key_id 'k', secret 's')", "refuses CREATE"),
    ("insert into trials select * from trials", "refuses INSERT"),
    ("update trials set seed = 1", "refuses UPDATE"),
    ("delete from trials", "refuses DELETE"),
    ("drop view trials", "refuses DROP"),
    ("pragma enable_profiling", "refuses PRAGMA"),
    ("set enable_external_access = true", "refuses SET"),
    ("set profiling_output = 'prof.json'", "refuses SET"),
    ("reset lock_configuration", "refuses SET"),
    ("call pragma_version()", "refuses CALL"),
    ("checkpoint", "refuses CALL"),
    ("vacuum", "refuses VACUUM"),
    ("begin transaction", "refuses TRANSACTION"),
    ("prepare q as select 1", "refuses PREPARE"),
    ("explain analyze copy (select 1) to 'store/ea.csv'", "refuses EXPLAIN"),
    ("select 1; copy (select 1) to 'two.csv'", "holds 2 statements"),
    ("pivot trials on loss using count(*)", "PIVOT without an IN list"),
    # Reads of files outside the store.
    ("select * from read_parquet('/etc/nothing/*.parquet')", "/etc/nothing/*.parquet is outside it"),
    ("select * from read_csv('/etc/passwd')", "/etc/passwd is outside it"),
    ("select * from read_csv('secret.csv')", "secret.csv is outside it"),
    ("select * from read_text('/etc/hostname')", "/etc/hostname is outside it"),
    ("select * from read_blob('/proc/self/environ')", "/proc/self/environ is outside it"),
    ("select * from read_json('/etc/os-release')", "is outside it"),
    ("select * from glob('/etc/*')", "/etc/* is outside it"),
    ("select * from glob('*')", "is outside it"),
    ("select * from read_csv('store/../secret.csv')", "store/../secret.csv is outside it"),
    ("select * from query('select * from read_csv(''/etc/passwd'')')", "is outside it"),
]


@pytest.mark.parametrize("sql,needle", REFUSED, ids=[s for s, _ in REFUSED])
def test_refused_queries_are_one_line_exit_2_and_leave_no_file(store, tmp_path, capsys, sql, needle):
    before = snapshot(tmp_path)
    code = main(["query", sql, "--store", str(store), "--out", str(tmp_path / "result.csv")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before  # nothing written, in the store or beside it
    # The connection is locked down, not just the parser: a later query still sees the same store.
    assert main(["query", "select count(*) as n from trials", "--store", str(store), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"n": 2}


@pytest.mark.parametrize(
    "sql",
    [
        "select trial_key, lam from trials",
        "with t as (select * from trials) select count(*) from t",
        "from dims select dim, norm_mean",
        "describe trials",
        "summarize dims",
        "values (1, 2)",
        "pivot trials on loss in ('se', 'dconv') using count(*)",
        "select count(*) from read_parquet('store/trials/*/*.parquet')",  # the store's own files may be read
        "@status_counts",
        "@toy_summary",
    ],
)
def test_selects_and_named_queries_still_work(store, capsys, sql):
    assert main(["query", sql, "--store", str(store)]) == 0, capsys.readouterr().err


def test_every_output_format(store, tmp_path, capsys):
    sql = "select trial_key, seed from trials order by seed"
    for fmt in ("table", "csv", "json", "markdown", "parquet"):
        out = tmp_path / f"result.{fmt}"
        assert main(["query", sql, "--store", str(store), "--format", fmt, "--out", str(out)]) == 0
        assert out.stat().st_size > 0
    assert pq.read_table(tmp_path / "result.parquet").column("seed").to_pylist() == [0, 1]
    assert (tmp_path / "result.csv").read_text().splitlines()[0] == "trial_key,seed"


def test_object_store_views_work_and_other_objects_are_refused(capsys):
    """Over an fsspec file system (here memory://, the same path as s3:// through a registered
    file system) the views read the store, and nothing else of that file system can be read."""
    fs = fsspec.filesystem("memory")
    url = "memory://read-only-test/store"
    write_toy_trial(Store(url), 0)
    fs.pipe_file("/read-only-test/secret.csv", b"token\n42\n")
    try:
        assert main(["query", "select count(*) as n from trials", "--store", url, "--format", "json"]) == 0
        assert json.loads(capsys.readouterr().out) == {"n": 1}
        assert main(["query", "select * from read_csv('memory://read-only-test/secret.csv')", "--store", url]) == 2
        assert "memory://read-only-test/secret.csv is outside it" in capsys.readouterr().err
        assert main(["query", "copy (select 1) to 'memory://read-only-test/store/x.csv'", "--store", url]) == 2
        assert not fs.exists("/read-only-test/store/x.csv")
    finally:
        fs.rm("/read-only-test", recursive=True)
