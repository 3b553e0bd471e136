"""``python -m isosweep``: the command line, as the ``isosweep`` console script runs it."""

import sys

from isosweep.cli import main

sys.exit(main())
