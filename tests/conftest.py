"""Shared fixtures: paths to the real data sets and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# One torch thread: small models are fastest and most repeatable that way on a 2-core machine.
torch.set_num_threads(1)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data sets not present at {SHARED_DATA}")
    return SHARED_DATA


def cli_env() -> dict[str, str]:
    """Environment for `isosweep` subprocesses: no store from the caller's environment."""
    env = dict(os.environ)
    env.pop("ISOSWEEP_STORE", None)
    return env


def isosweep(*args: str, check: bool = True, timeout: float = 600):
    """Run the installed `isosweep` console script as a user would."""
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "isosweep"
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, env=cli_env(), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"isosweep {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def smoke_store(tmp_path_factory) -> Path:
    """A real store: the whole toy study at the smoke budget, run on local Ray through the CLI."""
    store = tmp_path_factory.mktemp("smoke") / "store"
    isosweep("run", "toy", "--budget", "smoke", "--store", str(store))
    return store
