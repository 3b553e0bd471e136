"""Ctrl-C held back to clean points (isosweep.interrupts), with a real SIGINT sent to this process;
SIGTERM and SIGHUP handled as Ctrl-C, in this process and by a running `isosweep run`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support import start_run_until

from helpers import EXE, cli_env
from isosweep.interrupts import deferred_interrupt, exit_code_for_interrupt, stop_signals_as_ctrl_c


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """SIGINT with Python's own handler, as an interactive run has it. A suite started in the
    background by a non-interactive shell inherits SIGINT ignored, and an ignored SIGINT is left
    ignored on purpose (the last test)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    others = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    yield
    signal.signal(signal.SIGINT, previous)
    for number, handler in others.items():
        signal.signal(number, handler)


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # Python runs the handler at the next bytecode boundary of the main thread


def test_ctrl_c_is_held_to_the_end_of_the_block() -> None:
    reached = False
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt() as stop:
            ctrl_c()
            assert stop.is_set()
            reached = True
    assert reached
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_nested_block_sees_a_ctrl_c_from_before_it_began() -> None:
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt() as outer:
            ctrl_c()
            with deferred_interrupt() as inner:
                assert inner.is_set()  # the work inside stops at its first check
    assert outer.is_set()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_ctrl_c_no_exception() -> None:
    with deferred_interrupt() as stop:
        pass
    assert not stop.is_set()


def test_an_ignored_sigint_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with deferred_interrupt() as stop:
            ctrl_c()
        assert not stop.is_set()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("stop, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_act_as_ctrl_c(stop: signal.Signals, code: int) -> None:
    """Once installed, SIGTERM and SIGHUP go where SIGINT goes: held to the end of a deferral,
    KeyboardInterrupt otherwise; the exit code then names the signal as a shell would."""
    stop_signals_as_ctrl_c(reset=True)
    assert exit_code_for_interrupt() == 130
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt() as held:
            os.kill(os.getpid(), stop)
            time.sleep(0.05)
            assert held.is_set()
    assert exit_code_for_interrupt() == code
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), stop)
        time.sleep(0.05)
    stop_signals_as_ctrl_c(reset=True)
    assert exit_code_for_interrupt() == 130


def _claim_files(store: Path) -> list[str]:
    return sorted(str(p.relative_to(store)) for p in (store / "claims").rglob("*") if p.is_file())


@pytest.mark.slow  # a Ray sweep each; the fast tier stops a run with Ctrl-C (test_hostile_ray.py)
@pytest.mark.parametrize("stop, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)], ids=["SIGTERM", "SIGHUP"])
def test_a_run_stopped_by_sigterm_or_sighup_says_how_to_finish(tmp_path: Path, stop: signal.Signals, code: int) -> None:
    """SIGTERM (``kill``, a job scheduler) or SIGHUP (a closed terminal) to the driver alone, once
    the first trial is done: the sweep stops as on Ctrl-C, with the exit code of that signal, one
    line that says how to finish and no dump of Ray's; the same command then finishes it, and no
    claim of the stopped run is left."""
    store = tmp_path / "store"
    command = [EXE, "run", "toy", "--where", "dataset=mix,lam=100", "--fuse", "off", "--store", str(store)]
    proc, lines = start_run_until(command, "[1/", cli_env())
    proc.send_signal(stop)
    out, err = proc.communicate(timeout=300)
    out = "".join(lines) + out
    assert proc.returncode == code, f"{out}\n{err}"
    errors = [line for line in err.splitlines() if line.startswith("isosweep:")]
    assert errors == [
        f"isosweep: interrupted; completed trials are kept: finish the sweep with "
        f"`isosweep resume toy-smoke --store {store}` (or run the same command again)"
    ], err
    assert "SIGTERM received" not in err and "Traceback" not in err and "Tuner.restore" not in out + err
    again = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=600)
    assert again.returncode == 0, again.stderr
    assert "ok 3, failed 0, diverged 0, missing 0 of 3" in again.stdout
    assert _claim_files(store) == []
