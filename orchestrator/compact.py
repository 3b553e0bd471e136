"""Compaction: merge a store's per-trial files into few large ones.

Queries over thousands of small files spend their time opening files (DuckDB reads row groups of
under a few thousand rows several times slower than large ones). Two ways in:

- ``merge_written``, run by a worker once it has written a fused unit's trials: their per-trial
  files become one compacted file per (table, study), from the rows still in memory (nothing is
  read back), while the other workers go on training.
- ``compact_sweep``, run by every sweep when it ends: incremental. Per (table, study) it merges the
  per-trial files of the sweep's trials, plus only those compacted files that are no larger than
  what it merges so far (a size-tiered rule, like a binary counter: file sizes grow geometrically,
  each row is rewritten O(log n) times in all), and while more than ``MAX_COMPACTED`` compacted
  files would remain, the smallest of them. So a (table, study) folder holds at most
  ``MAX_COMPACTED`` compacted files, plus the per-trial files of sweeps still running (when the
  workers' merges left more, it merges the smallest).
- ``compact`` (``isosweep compact``): everything of every (table, study) into one file, for stores
  written by older versions or with sweep-end compaction switched off.

Both are safe to kill at any moment and to run beside sweeps, readers and other compactions:

1. read the chosen files, remembering each file's size and mtime;
2. write the merged rows as ``compact-<uuid>.parquet`` (atomically, like every store file), taking
   each (trial_key, run_id) from one file only, so the merged file never holds a trial twice;
3. remove the merged inputs, except a per-trial file that changed since it was read (a trial a
   sweep re-ran meanwhile): that one stays, and the readers pick its newer run.

Between 2 and 3 a trial's rows exist in two files with the same run_id; the readers take them from
one file (``isosweep.analysis.db``), so they never see a trial twice or miss one, whenever a kill
lands. The trials table is compacted last, as it is written last.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from isosweep.schema import TABLES, WRITE_ORDER
from isosweep.store import COMPACT_PREFIX, READ_THREADS, Store, read_store_file

KillPoint = Callable[[str], None]

MAX_COMPACTED = 8
"""Most compacted files a (table, study) folder keeps after a sweep-end compaction."""


@dataclass
class CompactionReport:
    """What one compaction did."""

    merged_files: int = 0
    written_files: int = 0
    kept_changed: list[str] = field(default_factory=list)
    skipped_corrupt: list[str] = field(default_factory=list)


def is_compacted(path: str) -> bool:
    return os.path.basename(path).startswith(COMPACT_PREFIX)


def _signature(store: Store, path: str) -> tuple:
    info = store.fs.info(path)
    return (info.get("size"), info.get("mtime") or info.get("LastModified") or info.get("created"))


def _pair_keys(table: pa.Table) -> pa.Array:
    return pc.binary_join_element_wise(table["trial_key"], pc.fill_null(table["run_id"], ""), ":")


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The table with exactly the schema's columns (missing ones null), in the schema's order."""
    if table.schema.equals(schema, check_metadata=False):
        return table  # the common case: a file this version wrote
    columns = [
        table[name].cast(f.type) if name in table.column_names else pa.nulls(table.num_rows, f.type)
        for name, f in zip(schema.names, schema)
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _read(store: Store, path: str, table_name: str) -> tuple[str, tuple | None, pa.Table | None]:
    """(path, signature, rows in the table's schema); rows None when the file is gone (merged away
    meanwhile by another compaction: its rows are elsewhere), signature None too when it cannot
    be read: damaged, or not one of the store's tables (``isosweep.store.read_store_file``)."""
    try:
        signature = _signature(store, path)
        return path, signature, _conform(read_store_file(store, path, table_name), TABLES[table_name])
    except FileNotFoundError:
        return path, (), None
    except Exception:  # left where it is, and reported: never merged, never removed
        return path, None, None


def merge_files(
    store: Store,
    table_name: str,
    study_dir: str,
    files: list[str],
    report: CompactionReport,
    kill: KillPoint | None = None,
) -> None:
    """Merge ``files`` of one (table, study) folder into one new compacted file and remove them
    (steps 1-3 of the module docstring). Compacted inputs are read first, so a pair found in
    both an old compacted file and a per-trial copy is taken from the compacted file. A file that
    cannot be read is left in place and listed in ``report.skipped_corrupt``: the rows of the
    others are merged, and the trials whose rows it held count as damaged (``isosweep.store``)."""
    files = sorted(files, key=lambda p: (not is_compacted(p), p))
    seen: set[str] = set()
    parts: list[pa.Table] = []
    inputs: list[tuple[str, tuple | None]] = []
    with ThreadPoolExecutor(READ_THREADS) as pool:
        read = list(pool.map(lambda path: _read(store, path, table_name), files))
    for path, signature, table in read:
        if table is None:
            if signature is None:
                report.skipped_corrupt.append(path)
            continue
        pairs = _pair_keys(table)
        unique = pc.unique(pairs).to_pylist()
        fresh = [p for p in unique if p not in seen]
        seen.update(fresh)
        if len(fresh) < len(unique):  # some pairs were taken from an earlier file
            table = table.filter(pc.is_in(pairs, pa.array(fresh, pa.string())))
        parts.append(table)
        inputs.append((path, signature))
    if not inputs or (len(inputs) == 1 and is_compacted(inputs[0][0])):
        return  # nothing to gain: one compacted file rewritten as itself
    _write_and_remove(store, study_dir, parts, inputs, report, kill)


def _write_and_remove(
    store: Store,
    study_dir: str,
    parts: list[pa.Table],
    inputs: list[tuple[str, tuple | None]],
    report: CompactionReport,
    kill: KillPoint | None,
) -> None:
    """Steps 2 and 3: write ``parts`` as one compacted file, then remove the ``inputs`` (path and
    signature when read; a per-trial file whose signature changed since is kept; signature None:
    no check, the caller knows nobody else wrote it)."""
    out = f"{study_dir}/{COMPACT_PREFIX}{os.urandom(8).hex()}.parquet"
    store.write_table(out, pa.concat_tables(parts))
    report.written_files += 1
    if kill:
        kill("after-write")
    for i, (path, signature) in enumerate(inputs):
        if kill and i == len(inputs) // 2:
            kill("mid-remove")
        try:
            if signature is not None and not is_compacted(path) and _signature(store, path) != signature:
                report.kept_changed.append(path)
                continue
            store.fs.rm_file(path)  # one file: fsspec's rm() would expand glob characters in the path
            report.merged_files += 1
        except FileNotFoundError:
            continue


def merge_written(
    store: Store, written: list[tuple[str, str, pa.Table]], kill: KillPoint | None = None
) -> CompactionReport:
    """Merge the per-trial files a worker has just written (``written``: table name, path, and the
    rows written there) into one compacted file per (table, study), from the rows it still holds
    in memory, then remove them; the trials table last. The caller still holds the keys' claims
    (``isosweep.orchestrator.claims``), so no other driver rewrote those files meanwhile. Safe to
    kill at any moment, as ``merge_files``: the rows are in the per-trial files until the merged
    file holds them, and readers take a trial's rows from one file."""
    report = CompactionReport()
    groups: dict[tuple[str, str], list[tuple[str, pa.Table]]] = {}
    for table_name, path, table in written:
        groups.setdefault((table_name, os.path.dirname(path)), []).append((path, table))
    for (name, study_dir), files in sorted(groups.items(), key=lambda g: (WRITE_ORDER.index(g[0][0]), g[0][1])):
        if len(files) >= 2:
            parts = [_conform(table, TABLES[name]) for _, table in files]
            _write_and_remove(store, study_dir, parts, [(path, None) for path, _ in files], report, kill)
    return report


def _sizes(store: Store, paths: Iterable[str]) -> dict[str, int]:
    sizes = {}
    for path in paths:
        try:
            sizes[path] = int(store.fs.info(path).get("size") or 0)
        except FileNotFoundError:
            continue
    return sizes


def tiered_inputs(fresh: dict[str, int], compacted: dict[str, int], max_compacted: int = MAX_COMPACTED) -> list[str]:
    """The files a sweep-end compaction merges, given the sizes of the new per-trial files and of
    the folder's compacted files: all new ones, then, smallest first, each compacted file no larger
    than the bytes merged so far, then the smallest others while more than ``max_compacted``
    compacted files would be left (the merge's output counts as one)."""
    chosen = list(fresh)
    total = sum(fresh.values())
    rest = sorted(compacted, key=lambda p: (compacted[p], p))
    while rest and compacted[rest[0]] <= total:
        total += compacted[rest[0]]
        chosen.append(rest.pop(0))
    while rest and len(rest) + 1 > max_compacted:
        chosen.append(rest.pop(0))
    return chosen


def compact_sweep(
    store: Store, keys: Iterable[str] | None = None, kill: KillPoint | None = None, max_compacted: int = MAX_COMPACTED
) -> CompactionReport:
    """Merge the per-trial files of ``keys`` (all per-trial files where None) into the store's
    compacted files, incrementally (module docstring); the trials table last."""
    wanted = set(keys) if keys is not None else None
    report = CompactionReport()
    for table_name in WRITE_ORDER:
        for study_dir in store.study_dirs(table_name):
            files = store.list_files(study_dir, ".parquet")
            fresh = [
                p
                for p in files
                if not is_compacted(p) and (wanted is None or os.path.basename(p)[: -len(".parquet")] in wanted)
            ]
            compacted = [p for p in files if is_compacted(p)]
            if not fresh and len(compacted) <= max_compacted:
                continue
            chosen = tiered_inputs(_sizes(store, fresh), _sizes(store, compacted), max_compacted)
            merge_files(store, table_name, study_dir, chosen, report, kill)
    return report


def compact(store: Store, kill: KillPoint | None = None) -> CompactionReport:
    """Compact every table of the store into one file per (table, study); the trials table last."""
    report = CompactionReport()
    for table_name in WRITE_ORDER:
        for study_dir in store.study_dirs(table_name):
            files = store.list_files(study_dir, ".parquet")
            if len(files) >= 2:
                merge_files(store, table_name, study_dir, files, report, kill)
    return report
