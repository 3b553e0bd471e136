"""``python tests/without_modules.py MODULES ARGS...``: run ``python -m isosweep ARGS`` where the
comma-separated MODULES (and their submodules) cannot be imported, as on a machine where they are
not installed: importing one raises ModuleNotFoundError, as Python does then."""

from __future__ import annotations

import importlib.abc
import runpy
import sys
from collections.abc import Sequence
from typing import Any


class Missing(importlib.abc.MetaPathFinder):
    """A finder, first on ``sys.meta_path``, that finds none of ``names``."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: Any = None) -> None:
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


if __name__ == "__main__":
    missing = {name for name in sys.argv[1].split(",") if name}
    for name in list(sys.modules):  # nothing of them may be loaded already
        if name.split(".")[0] in missing:
            del sys.modules[name]
    sys.meta_path.insert(0, Missing(missing))
    sys.argv = ["isosweep", *sys.argv[2:]]
    runpy.run_module("isosweep", run_name="__main__", alter_sys=True)
