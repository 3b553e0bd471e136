"""The ``isosweep`` console script: the command line, with Ctrl-C during start-up answered too.

Importing the command line takes a moment (DuckDB, PyArrow, NumPy). A Ctrl-C in that time would
otherwise land inside whichever import was running: a traceback, or, inside a C extension's
initialisation, an abort. So it is held back until the imports are done (nothing has been read
or written yet then), and one line says so.
"""

from __future__ import annotations

import sys


def main() -> int:
    from isosweep.interrupts import deferred_interrupt, exit_code_for_interrupt, stop_signals_as_ctrl_c

    stop_signals_as_ctrl_c()  # SIGTERM or SIGHUP while starting: the same line as Ctrl-C
    try:
        with deferred_interrupt():
            from isosweep.cli import main as run_command_line
    except KeyboardInterrupt:
        print("isosweep: interrupted while starting; nothing was done", file=sys.stderr)
        return exit_code_for_interrupt()
    return run_command_line()
