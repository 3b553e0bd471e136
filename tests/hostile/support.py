"""Helpers of the hostile-input suite: fabricated stores and byte-for-byte snapshots."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from pathlib import Path

from helpers import write_trial
from isosweep.store import Store
from isosweep.studies import STUDIES


def make_store(path: Path, trials: int = 3) -> list[str]:
    """A small local store holding the first ``trials`` trials of ``isosweep run toy`` (smoke
    budget), fabricated; their keys. A dry run of the toy study counts them as complete."""
    store = Store(str(path))
    return [write_trial(store, cfg) for cfg in STUDIES["toy"].configs("smoke")[:trials]]


Snapshot = dict[str, tuple[str, str]]


def snapshot(*roots: Path) -> Snapshot:
    """Every file, folder and link below ``roots`` (the roots included): kind and content hash
    (files), target (links), mode (folders). Two equal snapshots mean nothing was created,
    removed or changed there, byte for byte."""
    out: Snapshot = {}
    for root in roots:
        if not os.path.lexists(root):
            out[str(root)] = ("absent", "")
            continue
        for parent, dirs, files in os.walk(root, followlinks=False):
            p = Path(parent)
            out[str(p)] = ("dir", oct(p.stat().st_mode))
            for name in [*dirs, *files]:
                q = p / name
                if q.is_symlink():
                    out[str(q)] = ("link", os.readlink(q))
                elif q.is_file():
                    out[str(q)] = ("file", hashlib.sha256(q.read_bytes()).hexdigest())
    return out


def trained(stdout: str) -> int:
    """Trials a driver trained: its progress lines (`[n/total] ok KEY ...`); keys it found
    finished by another driver have none."""
    return len(re.findall(r"^\[\d+/\d+\] (?:ok|failed|diverged)\s", stdout, re.MULTILINE))


def start_run_until(command: list[str], progress: str, env: dict[str, str]) -> tuple[subprocess.Popen, list[str]]:
    """Start an ``isosweep run`` as a process group of its own and read its output until the line
    that begins with ``progress`` (``"[2/"``: the second trial done), at most 300 s: the process
    (still running) and the lines read so far."""
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.startswith(progress) or not line:
            break
    return proc, lines
