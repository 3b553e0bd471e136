"""Ctrl-C held back while a piece of work must not be cut at an arbitrary point.

Python raises KeyboardInterrupt at whatever bytecode the main thread is running when SIGINT
arrives, and DuckDB also polls for signals while it runs a statement in the main thread. So a
Ctrl-C can land between starting a helper thread and the code that would stop it (the query
then runs on, and closing its connection waits for it), or inside DuckDB's scan of a registered
Arrow table (which reports it as a query error, exit 2), or as DuckDB's own "Query interrupted"
(a traceback). Within :func:`deferred_interrupt`, SIGINT only sets an event; the work checks the
event at points where stopping is clean, and Ctrl-C is raised as KeyboardInterrupt when the
block ends.

SIGTERM and SIGHUP are handled as Ctrl-C (:func:`stop_signals_as_ctrl_c`): a stopped run cleans up
and says how to go on whichever way it was stopped, and exits as a shell reports that signal.

Standard library only: the console entry imports this module before anything heavy.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def deferred_interrupt() -> Iterator[threading.Event]:
    """Yield an event that SIGINT sets instead of raising; raise KeyboardInterrupt at the block's end
    if it was set (through the handler in place before, where that was a Python function).

    Only the main thread receives signals and may change their handlers: elsewhere, and where
    SIGINT is ignored or left to the OS (a process started in the background), the event is
    yielded and nothing changes.
    """
    pending = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    previous = signal.getsignal(signal.SIGINT)
    outer = getattr(previous, "pending", None)
    if isinstance(outer, threading.Event):
        # Nested in another deferral: share its event, so a Ctrl-C that came before this block
        # began is seen inside it too (the outer block raises it at its end).
        yield outer
        if outer.is_set():
            raise KeyboardInterrupt
        return
    if not callable(previous):
        yield pending
        return

    def hold(signum: int, frame: Any) -> None:
        pending.set()

    hold.pending = pending  # type: ignore[attr-defined]  # how a nested deferral finds the event
    signal.signal(signal.SIGINT, hold)
    try:
        yield pending
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending.is_set():
        previous(signal.SIGINT, None)  # the default handler raises KeyboardInterrupt
        raise KeyboardInterrupt  # a handler that returned: the work was still stopped


STOP_SIGNALS = ("SIGTERM", "SIGHUP")
"""Signals that stop a command as Ctrl-C does: a job scheduler's or ``kill``'s polite stop, and
a closed terminal."""

_received: list[int] = []


def received_stop_signal() -> int | None:
    """The SIGTERM or SIGHUP (its number) that stopped this process, or None (none came, or the
    stop was a Ctrl-C)."""
    return _received[-1] if _received else None


def exit_code_for_interrupt() -> int:
    """The exit code of a command stopped by a signal, as a shell reports a process that a
    signal ended: 128 + its number (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP)."""
    return 128 + (received_stop_signal() or signal.SIGINT)


def _as_ctrl_c(signum: int, frame: Any) -> None:
    """SIGTERM or SIGHUP, handled as a SIGINT: by whichever SIGINT handler is in place (Ray Tune's,
    which stops the sweep cleanly; a :func:`deferred_interrupt`'s; Python's, which raises
    KeyboardInterrupt), so every clean-up written for Ctrl-C serves these signals too."""
    _received.append(signum)
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not _as_ctrl_c:
        handler(signal.SIGINT, frame)
    else:  # SIGINT ignored (a process started in the background): stop all the same
        raise KeyboardInterrupt


def stop_signals_as_ctrl_c(reset: bool = False) -> None:
    """Make SIGTERM and SIGHUP act as Ctrl-C in this process (main thread only; elsewhere nothing
    changes). Call it again after anything that installs its own handlers for them: ``ray.init``
    sets a SIGTERM handler that exits at once, and Ray's native code one that aborts with a dump.
    ``reset`` forgets a signal received before (a new command starts in this process)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if reset:
        _received.clear()
    for name in STOP_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _as_ctrl_c)
