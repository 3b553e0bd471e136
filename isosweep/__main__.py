"""``python -m isosweep``: the command line, as the ``isosweep`` console script runs it."""

import sys

from isosweep.console import main

sys.exit(main())
