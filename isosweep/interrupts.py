"""Ctrl-C held back while a piece of work must not be cut at an arbitrary point.

Python raises KeyboardInterrupt at whatever bytecode the main thread is running when SIGINT
arrives, and DuckDB also polls for signals while it runs a statement in the main thread. So a
Ctrl-C can land between starting a helper thread and the code that would stop it (the query
then runs on, and closing its connection waits for it), or inside DuckDB's scan of a registered
Arrow table (which reports it as a query error, exit 2), or as DuckDB's own "Query interrupted"
(a traceback). Within :func:`deferred_interrupt`, SIGINT only sets an event; the work checks the
event at points where stopping is clean, and Ctrl-C is raised as KeyboardInterrupt when the
block ends.

Standard library only: the console entry imports this module before anything heavy.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator


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
