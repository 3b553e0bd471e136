"""The hostile inputs that need a real Ray: a GPU asked of a cluster without one (refused after
connecting, before anything is written), and Ctrl-C during a sweep (one line that names
`isosweep resume`, not Ray's `Tuner.restore` hint)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from support import snapshot, start_run_until

from helpers import EXE, cli_env


@pytest.mark.slow  # starts Ray
def test_a_gpu_on_a_cluster_without_one_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    store = tmp_path / "store"
    before = snapshot(tmp_path)
    proc = subprocess.run(
        [EXE, "run", "toy", "--where", "dataset=mix,lam=100", "--gpus-per-trial", "1", "--store", str(store)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("isosweep:")]
    assert len(errors) == 1 and "no node can run a trial that asks for 1 CPU(s) and 1 GPU(s)" in errors[0]
    assert "Traceback" not in proc.stderr
    assert snapshot(tmp_path) == before  # not even the store's folder
    assert not store.exists()


@pytest.mark.slow  # two Ray sessions; the fast tier resumes a finished sweep (test_end_to_end.py)
def test_ctrl_c_during_a_run_names_isosweep_resume(tmp_path: Path) -> None:
    """SIGINT to the whole process group (what a terminal's Ctrl-C sends) once the first trials
    are done: exit 130 and one line that says how to finish, `isosweep resume NAME --store S`;
    then that command finishes the sweep."""
    store = tmp_path / "store"
    proc, lines = start_run_until(
        [EXE, "run", "toy", "--where", "dataset=mix", "--fuse", "off", "--store", str(store)], "[2/", cli_env()
    )
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    out = "".join(lines) + out
    assert proc.returncode == 130, f"{out}\n{err}"
    errors = [line for line in err.splitlines() if line.startswith("isosweep:")]
    assert errors == [
        f"isosweep: interrupted; completed trials are kept: finish the sweep with "
        f"`isosweep resume toy-smoke --store {store}` (or run the same command again)"
    ], err
    assert "Tuner.restore" not in out + err and "Traceback" not in err
    finish = subprocess.run(
        [EXE, "resume", "toy-smoke", "--store", str(store)], capture_output=True, text=True, env=cli_env(), timeout=600
    )
    assert finish.returncode == 0, finish.stderr
    assert "ok 30, failed 0, diverged 0, missing 0 of 30" in finish.stdout
