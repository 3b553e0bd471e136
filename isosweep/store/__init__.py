"""The results store: per-trial Parquet files under a local folder or any fsspec URL.

Layout (docs/architecture.md): ``<store>/<table>/study=<study>/<trial_key>.parquet`` for the tables of
``isosweep.schema``, and ``<store>/artifacts/<trial_key>/<name>`` for a trial's files (images).
Every file is written atomically (a temporary name then a rename on local
disks; a single PUT on object stores), and a trial's ``trials`` file is written last, so a reader
never sees half a trial. Files can still be lost or damaged afterwards (deleted by hand, a disk
error): an ok trial is complete only while readable files hold every row its trials row counts
(``Store.trial_states``), and the planner trains any other trial again.

One module per job:

- ``layout``: the store's names and constants (default location, folder and file names, the
  columns every row has), and the escaping of its path for a glob;
- ``writing``: a local file written whole or not at all;
- ``folder``: ``StoreFolder``, the store's folder and files through fsspec (paths, listings,
  checks, atomic writes);
- ``rows``: a finished trial as the rows of each table;
- ``reading``: one store file read as one of the store's tables;
- ``trials``: ``Store``, which writes whole trials and reads the recorded state of each
  (``StoredTrial``).

The names below are the store's public ones: import them from ``isosweep.store``.
"""

from isosweep.store.folder import StoreFolder
from isosweep.store.layout import (
    ALWAYS_WRITTEN,
    ARTIFACTS,
    COMPACT_PREFIX,
    DEFAULT_STORE,
    IDENTITY,
    PER_TRIAL_COMPRESSION,
    READ_THREADS,
    ROW_COUNTS,
    STATE_COLUMNS,
    UNREADABLE_FIX,
    default_store_url,
    glob_escape,
    has_glob_chars,
)
from isosweep.store.reading import ForeignFile, check_store_schema, read_store_file, unreadable_reason
from isosweep.store.rows import result_tables
from isosweep.store.trials import Store, StoredTrial
from isosweep.store.writing import CommitHook, replace_file

__all__ = [
    "ALWAYS_WRITTEN",
    "ARTIFACTS",
    "COMPACT_PREFIX",
    "DEFAULT_STORE",
    "IDENTITY",
    "PER_TRIAL_COMPRESSION",
    "READ_THREADS",
    "ROW_COUNTS",
    "STATE_COLUMNS",
    "UNREADABLE_FIX",
    "CommitHook",
    "ForeignFile",
    "Store",
    "StoreFolder",
    "StoredTrial",
    "check_store_schema",
    "default_store_url",
    "glob_escape",
    "has_glob_chars",
    "read_store_file",
    "replace_file",
    "result_tables",
    "unreadable_reason",
]
