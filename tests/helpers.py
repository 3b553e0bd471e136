"""Helpers the tests share: the repository's paths, the CLI as a user runs it, fabricated trials,
free ports, and waiting for a killed run to fall silent. Fixtures live in ``conftest.py``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from isosweep.store import Store
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.records import TrialResult, TrialStatus

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
EXE = str(Path(sys.executable).parent / "isosweep")
"""The installed `isosweep` console script."""


def cli_env() -> dict[str, str]:
    """Environment for `isosweep` subprocesses: no store from the caller's environment."""
    env = dict(os.environ)
    env.pop("ISOSWEEP_STORE", None)
    return env


def isosweep(*args: str, check: bool = True, timeout: float = 600):
    """Run the installed `isosweep` console script as a user would."""
    proc = subprocess.run([EXE, *args], capture_output=True, text=True, env=cli_env(), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"isosweep {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def one_line(exc_info) -> str:
    """The message of a raised error (``pytest.raises``'s ``exc_info``), checked to be one line."""
    message = str(exc_info.value)
    assert "\n" not in message, message
    return message


def parquet_files(store: Path, table: str) -> list[str]:
    """The names of a table's Parquet files in a local store, every study's, sorted."""
    return sorted(p.name for p in store.glob(f"{table}/*/*.parquet"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_trial(store: Store, cfg: TrialConfig) -> str:
    """One fabricated ok trial (``cfg``), written as a sweep writes it (the rows matter here, not
    the science); returns its key."""
    now = datetime.now(timezone.utc)
    dims = [
        {
            "dim": j,
            "rank": j + 1,
            "active": True,
            "norm_mean": 1.0,
            "norm_sd": 0.1,
            "dprime_mean": 1.0,
            "dprime_sd": 0.1,
            "sigma_inv2_mean": 4.0 ** (2 - j),
            "var_ratio": 4.0 ** (2 - j),
            "kl_mean": 1.0,
        }
        for j in range(3)
    ]
    result = TrialResult(
        cfg,
        TrialStatus.OK,
        now,
        now,
        scalars={"n_active": 3, "corr_post": 0.9},
        dims=dims,
        curves=[{"step": 1, "epoch": 1, "loss": 1.0, "recon": 0.5, "kl": 0.5}],
    )
    store.write_result(result, "test", {})
    return cfg.key


def wait_until_still(store: Path, quiet_s: float = 5.0, limit_s: float = 120.0) -> None:
    """Wait until no file under ``store`` has changed for ``quiet_s`` seconds: after a driver is
    killed, its workers may write (or merge) on for a moment until Ray stops them."""

    def state() -> dict[str, tuple[int, int]]:
        found = {}
        for p in store.rglob("*"):
            try:
                # Ray's experiment folder and the claims (leases are renewed) are not the tables.
                if p.is_file() and p.relative_to(store).parts[0] not in ("ray", "claims"):
                    found[str(p)] = (p.stat().st_mtime_ns, p.stat().st_size)
            except FileNotFoundError:
                continue
        return found

    deadline = time.monotonic() + limit_s
    last, since = state(), time.monotonic()
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.5)
        now = state()
        if now != last:
            last, since = now, time.monotonic()


def fill(folder: Path, leave_bytes: int = 0) -> None:
    """Fill the file system of ``folder`` until at most ``leave_bytes`` are free (a file
    ``filler`` there holds the space)."""
    stat = os.statvfs(folder)
    free = stat.f_bavail * stat.f_frsize
    with open(folder / "filler", "wb") as f:
        try:
            f.write(b"\0" * max(0, free - leave_bytes))
            f.flush()
        except OSError:
            pass  # full already
