"""What every loader of a real data set raises, and the few helpers they share for reading files
under a data root (a local folder or an fsspec URL)."""

from __future__ import annotations

import fsspec

from isosweep.errors import first_line

__all__ = ["DataError", "first_line", "require_root", "root_fs"]


class DataError(ValueError):
    """A data set's file is missing or not in the expected format; the message is one line that
    names the file and what was expected there."""


def root_fs(root: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The file system of a data root and the root's path on it (no trailing slash)."""
    try:
        fs, base = fsspec.core.url_to_fs(root)
    except (ImportError, ValueError) as exc:
        raise DataError(f"cannot open data root {root!r}: {exc}") from None
    return fs, base.rstrip("/")


def require_root(root: str | None, name: str, holds: str) -> str:
    """``root``, or DataError saying that data set ``name`` needs one holding ``holds``."""
    if not root:
        raise DataError(
            f"data set {name!r} is read from a data root: pass --data-root DIR (or set ISOSWEEP_DATA) "
            f"to a folder holding {holds}"
        )
    return root
