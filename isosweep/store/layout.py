"""The store's layout and names: where it is by default, what its files and folders are called,
which columns every row has, and how its path is made safe for a glob. No file access here."""

from __future__ import annotations

import os
import re

DEFAULT_STORE = "./results"
# Files written by `isosweep compact` start with this; per-trial files are named by trial key.
COMPACT_PREFIX = "compact-"
ARTIFACTS = "artifacts"
"""Folder of the files kept beside a trial's rows: ``<store>/artifacts/<trial_key>/<name>``."""


PER_TRIAL_COMPRESSION = "snappy"
"""Compression of a trial's own files. Reading a one-row file costs mostly per-column setup, and
zstd's is the dearest: a 76-column trials file reads in 1.5 ms with snappy against 4.1 ms with zstd
(pyarrow 26, this machine), which is most of the time a sweep-end compaction spends."""


READ_THREADS = 8
"""Files read at once: Arrow decodes without the GIL, and an object store answers each request
after a round trip, so a sweep's thousands of small files read several times faster in parallel."""


def default_store_url() -> str:
    return os.environ.get("ISOSWEEP_STORE", DEFAULT_STORE)


_GLOB_CHARS = re.compile(r"([*?\[])")


def glob_escape(path: str) -> str:
    """``path`` as a glob pattern that matches only itself: each of ``* ? [`` becomes a one-character
    class (``[*]``), which both DuckDB's and fsspec's globs read literally. The user's store path
    is never a pattern (a store named ``s*`` must not act on its sibling ``sA``); only the store's
    own layout below it is globbed."""
    return _GLOB_CHARS.sub(r"[\1]", path)


def has_glob_chars(path: str) -> bool:
    return _GLOB_CHARS.search(path) is not None


ROW_COUNTS = {"dims": "dims_rows", "curves": "curves_rows", "points": "points_rows"}
"""Per table besides ``trials``: the trials column that records how many rows a trial wrote there."""

ALWAYS_WRITTEN = ("dims", "curves")
"""Tables in which every ok trial of every study has rows (its latent dims, its training curve):
what is checked of a trials row written before ROW_COUNTS existed."""

IDENTITY = ("trial_key", "study", "run_id")
"""Columns that every row of every table has, never null. A Parquet file without them is not one
of the store's tables (another tool's file, a foreign schema): every reader treats it as
unreadable (``read_store_file``; the query views leave out rows without them)."""

STATE_COLUMNS = ("trial_key", "study", "run_id", "budget", "status", "finished_at")
"""The columns of a trials row that say what became of the trial (``StoredTrial``)."""


UNREADABLE_FIX = "delete them and run the sweep again to recompute their trials"
"""What to do about unreadable store files: their trials count as missing or damaged, so the next
run trains them again; the files themselves stay until deleted (nothing merges or removes them)."""
