"""Bad input: one clear line on stderr, exit code 2, nothing written."""

import pytest

from conftest import isosweep
from orchestrator.cli import main


@pytest.mark.parametrize("args,needle", [
    (["run", "toys"], "unknown study 'toys'"),
    (["run", "toy", "--where", "colour=red"], "is not an axis"),
    (["run", "toy", "--where", "dataset=circle"], "is not a value"),
    (["run", "toy", "--where", "lam=-5"], "must be a positive"),
    (["run", "toy", "--where", "lam=0"], "must be a positive"),
    (["run", "toy", "--budget", "huge"], "unknown budget 'huge'"),
    (["run", "toy", "--seeds", "0"], "must be at least 1"),
    (["run", "toy", "--fuse", "x"], "--fuse"),
    (["frobnicate"], "invalid choice"),
    (["query", "select 1", "--format", "parquet"], "needs --out"),
    (["query", "@no_such_query"], "unknown named query"),
    (["query", "select * from nowhere"], "query failed"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, needle):
    store = tmp_path / "store"
    code = main([*args, "--store", str(store)] if args[0] in ("run", "query") else args)
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert not store.exists()


def test_a_store_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "results.parquet"
    f.write_bytes(b"not a folder")
    assert main(["run", "toy", "--store", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert f.read_bytes() == b"not a folder"


def test_console_script_exit_code(tmp_path):
    proc = isosweep("run", "toy", "--where", "lam=-1", "--store", str(tmp_path / "s"), check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and proc.stdout == ""
    assert not (tmp_path / "s").exists()


def test_dry_run_writes_nothing(tmp_path, capsys):
    assert main(["run", "toy", "--dry-run", "--store", str(tmp_path / "s")]) == 0
    assert "90 trials planned" in capsys.readouterr().out
    assert not (tmp_path / "s").exists()
