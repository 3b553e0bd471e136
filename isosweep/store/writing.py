"""Atomic writes on a local disk: a file appears whole or not at all (object stores get the same
from a single PUT: ``StoreFolder.write_bytes``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

CommitHook = Callable[[str], None]
"""Called with a file's final path after its bytes are written and before they become visible."""


def replace_file(path: str, data: bytes, before_commit: CommitHook | None = None) -> None:
    """Write a local file whole or not at all: an interrupted or failed write leaves whatever was
    at ``path`` before, untouched. ``before_commit(path)`` runs just before the file appears."""
    # A hidden temporary name in the same folder: never matched by the store's *.parquet globs,
    # and os.replace within one file system is atomic.
    tmp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if before_commit is not None:
            before_commit(path)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
