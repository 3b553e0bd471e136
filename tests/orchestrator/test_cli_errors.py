"""Bad input: one clear line on stderr, exit code 2, nothing written."""

import pytest

from helpers import isosweep
from isosweep.cli import main


@pytest.mark.parametrize(
    "args,needle",
    [
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
        (["query", "select * from nowhere"], "does not exist"),  # a missing store is an error, not an empty answer
    ],
)
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


def test_unwritable_store_and_unreachable_address(tmp_path, capsys):
    assert main(["run", "toy", "--store", "/proc/isosweep-cannot-be-here"]) == 2
    assert "is not writable" in capsys.readouterr().err
    assert main(["run", "toy", "--store", str(tmp_path / "s"), "--address", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach Ray at 127.0.0.1:1" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s").exists()
    assert main(["run", "toy", "--store", str(tmp_path / "s"), "--address", "no-port"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err


def test_resume_of_an_unknown_sweep(smoke_store, capsys):
    assert main(["resume", "no-such-sweep", "--store", str(smoke_store)]) == 2
    err = capsys.readouterr().err
    assert "no sweep named 'no-such-sweep'" in err and "toy-smoke" in err and len(err.splitlines()) == 1


def test_a_corrupt_file_is_named_and_the_rest_still_works(smoke_store, tmp_path, capsys):
    import shutil

    store = tmp_path / "store"
    shutil.copytree(smoke_store, store, ignore=shutil.ignore_patterns("ray"))
    victim = sorted((store / "trials" / "study=toy").glob("*.parquet"))[0]
    victim.write_bytes(b"PAR1 this is not parquet")
    assert main(["status", "--store", str(store)]) == 0
    out, err = capsys.readouterr()
    assert "toy    smoke   90       89" in out and victim.name in out and victim.name in err
    assert main(["query", "select count(*) from trials", "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert victim.name in err and "delete it" in err and len(err.splitlines()) == 1
    # The documented repair: delete the file; the next run recomputes exactly that trial.
    victim.unlink()
    assert main(["run", "toy", "--store", str(store), "--dry-run"]) == 0
    assert "89 already complete, 1 to run" in capsys.readouterr().out
