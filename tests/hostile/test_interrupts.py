"""Ctrl-C held back to clean points (isosweep.interrupts), with a real SIGINT sent to this process."""

from __future__ import annotations

import os
import signal
import time

import pytest

from isosweep.interrupts import deferred_interrupt


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """SIGINT with Python's own handler, as an interactive run has it. A suite started in the
    background by a non-interactive shell inherits SIGINT ignored, and an ignored SIGINT is left
    ignored on purpose (the last test)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


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
