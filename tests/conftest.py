"""Shared fixtures: the real data sets, a smoke store, an S3-compatible server, a tiny disk.
Plain helpers live in ``helpers.py``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import SHARED_DATA, free_port, isosweep

# One torch thread: small models are fastest and most repeatable that way on a 2-core machine.
torch.set_num_threads(1)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data sets not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def smoke_store(tmp_path_factory) -> Path:
    """A real store: the whole toy study at the smoke budget, run on local Ray through the CLI,
    with one file per trial and table (``--no-compact``), the layout older versions wrote."""
    store = tmp_path_factory.mktemp("smoke") / "store"
    isosweep("run", "toy", "--budget", "smoke", "--no-compact", "--store", str(store))
    return store


def _clear_s3_instances() -> None:
    # fsspec caches file system objects: one made for an earlier server (another test module's,
    # on another port) must not be reused for this one.
    import fsspec

    fsspec.get_filesystem_class("s3").clear_instance_cache()


@pytest.fixture(scope="module")
def s3_server():
    """A real S3-compatible server (moto) on 127.0.0.1 with the bucket ``isosweep-test``; the
    AWS_* variables that point clients at it are set in this process (and so in the CLI's
    subprocesses) while the module's tests run."""
    server = Path(sys.executable).parent / "moto_server"
    if not server.exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    import fsspec

    _clear_s3_instances()
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("isosweep-test")
    yield port
    proc.terminate()
    proc.wait(timeout=30)
    _clear_s3_instances()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A real file system of 3 MiB (a tmpfs mounted at a folder of ``tmp_path``), to fill up;
    unmounted after the test. Mounting needs root: skipped elsewhere."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
