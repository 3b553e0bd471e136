"""A store on a full disk (a real 3 MiB tmpfs, filled): the run ends within minutes with one line
that says so and what to do, exit 2, no retries, and no empty file that a later run would trust;
once the disk has room, the same command finishes the sweep. A damaged Ray checkpoint (as such a
write leaves) costs its progress, not the run, and an empty claim file (another) delays a run by
one lease at most."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from helpers import EXE, cli_env, fill

RAY_MARKER = ".validate_storage_marker"
"""Ray writes this file empty on purpose, to test that it can write the folder; nothing reads it."""


def _empty_files(store: Path) -> list[str]:
    return sorted(
        str(p.relative_to(store))
        for p in store.rglob("*")
        if p.is_file() and p.stat().st_size == 0 and p.name != RAY_MARKER
    )


def _run_into_a_full_disk(disk: Path) -> tuple[Path, list[str]]:
    """Run three toy trials with a store on ``disk``, filled so that Ray's first checkpoints do
    not fit; check the outcome; return the store and the command."""
    store = disk / "store"
    fill(disk, leave_bytes=300_000)
    command = [
        EXE,
        "run",
        "toy",
        "--budget",
        "smoke",
        "--where",
        "dataset=mix,lam=100",
        "--max-failures",
        "2",
        "--store",
        str(store),
    ]
    start = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=240)
    assert time.monotonic() - start < 240
    assert proc.returncode == 2, f"{proc.stdout}\n{proc.stderr}"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("isosweep:")]
    assert errors == [
        f"isosweep: error: no space left on {store}; free space there or choose another --store, "
        "then start the sweep again with `isosweep run` (completed trials are kept)"
    ], proc.stderr
    assert "Traceback" not in proc.stderr and "retry" not in proc.stdout
    assert _empty_files(store) == []
    assert [p for p in (store / "claims").rglob("*") if p.is_file()] == []
    return store, command


@pytest.mark.slow  # a Ray sweep into a full disk
def test_a_run_into_a_full_disk_ends_with_one_line(tiny_disk: Path) -> None:
    _run_into_a_full_disk(tiny_disk)


@pytest.mark.slow
def test_after_a_full_disk_is_grown_the_same_command_finishes(tiny_disk: Path) -> None:
    store, command = _run_into_a_full_disk(tiny_disk)
    subprocess.run(["mount", "-o", "remount,size=200m", str(tiny_disk)], check=True)
    again = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=600)
    assert again.returncode == 0, again.stderr
    assert "ok 3, failed 0, diverged 0, missing 0 of 3" in again.stdout
    assert _empty_files(store) == []
    assert [p for p in (store / "claims").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 cut short"], ids=["empty", "cut-short"])
def test_a_damaged_checkpoint_trains_its_bundle_from_the_start(tmp_path: Path, content: bytes) -> None:
    from ray import tune

    from isosweep.orchestrator.trainable import CHECKPOINT_FILE, _load_checkpoint

    (tmp_path / CHECKPOINT_FILE).write_bytes(content)
    assert _load_checkpoint(tune.Checkpoint.from_directory(str(tmp_path))) is None


def _leave_an_empty_claim(store: Path, age_s: float) -> Path:
    """An empty claim file on one of the three toy trials at lambda 100, as a write into a full
    disk leaves it, last written ``age_s`` seconds ago."""
    from isosweep.studies import STUDIES

    key = next(c.key for c in STUDIES["toy"].configs("smoke") if c.dataset == "mix" and c.lam == 100)
    claim = store / "claims" / key / "1"
    claim.parent.mkdir(parents=True)
    claim.touch()
    os.utime(claim, (time.time() - age_s, time.time() - age_s))
    return claim


@pytest.mark.parametrize(
    "age_s, bound_s",
    [pytest.param(600.0, 240.0, marks=pytest.mark.slow), pytest.param(0.0, 300.0, marks=pytest.mark.slow)],
    ids=["old", "fresh"],
)  # a Ray sweep each
def test_an_empty_claim_delays_a_run_by_one_lease_at_most(tmp_path: Path, age_s: float, bound_s: float) -> None:
    """An empty claim file counts as expired one lease (60 s) after it was last written: an old
    one at once, a fresh one after a minute; the run then trains its key and leaves no claim."""
    store = tmp_path / "store"
    _leave_an_empty_claim(store, age_s)
    start = time.monotonic()
    proc = subprocess.run(
        [EXE, "run", "toy", "--budget", "smoke", "--where", "dataset=mix,lam=100", "--store", str(store)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=bound_s,
    )
    assert time.monotonic() - start < bound_s
    assert proc.returncode == 0, proc.stderr
    assert "ok 3, failed 0, diverged 0, missing 0 of 3" in proc.stdout
    assert [p for p in (store / "claims").rglob("*") if p.is_file()] == []


def test_a_full_disk_is_told_from_other_errors() -> None:
    """What stops a sweep at once (no retry): ENOSPC or EDQUOT, also as a message without an
    errno (Arrow's) or behind another exception (Ray's); not any other error."""
    import errno

    from isosweep.errors import no_space, no_space_path

    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/store/x")
    assert no_space(full) and no_space_path(full) == "/store/x"
    assert no_space(OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)))
    assert no_space(OSError("IOError: error writing bytes to file. Detail: [errno 28] No space left on device"))
    try:
        try:
            raise full
        except OSError as exc:
            raise RuntimeError("a worker failed") from exc
    except RuntimeError as wrapped:
        assert no_space(wrapped) and no_space_path(wrapped) == "/store/x"
    assert not no_space(PermissionError(errno.EACCES, "Permission denied", "/store/x"))
    assert not no_space(ValueError("diverged"))
