"""The ``isosweep`` console script: the command line, with Ctrl-C during start-up answered too.

Importing the command line takes a moment (DuckDB, PyArrow, NumPy). A Ctrl-C in that time would
otherwise land inside whichever import was running: a traceback, or, inside a C extension's
initialisation, an abort. So it is held back until the imports are done (nothing has been read
or written yet then), and one line says so.
"""

from __future__ import annotations

import sys


def main() -> int:
    from isosweep.interrupts import deferred_interrupt

    try:
        with deferred_interrupt():
            from isosweep.cli import main as run_command_line
    except KeyboardInterrupt:
        print("isosweep: interrupted while starting; nothing was done", file=sys.stderr)
        return 130
    return run_command_line()
