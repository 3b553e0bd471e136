"""Compaction: merge a store's per-trial files into one file per table and study.

Queries over thousands of small files spend their time opening files; after compaction each
(table, study) is one file. Safe to kill at any moment and to run beside a sweep:

1. list the files of a (table, study) and read them, remembering each file's size and mtime;
2. write the merged rows as ``compact-<uuid>.parquet`` (atomically, like every store file), taking
   each (trial_key, run_id) from one file only, so the merged file never holds a trial twice;
3. remove the merged inputs, except a per-trial file that changed since it was read (a trial a
   sweep re-ran meanwhile): that one stays, and the readers pick its newer run.

Between 2 and 3 a trial's rows exist in two files with the same run_id; the readers take them from
one file (``isosweep.analysis.db``), so they never see a trial twice or miss one, whenever a kill lands.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from isosweep.schema import TABLES, WRITE_ORDER
from isosweep.store import COMPACT_PREFIX, Store

KillPoint = Callable[[str], None]


@dataclass
class CompactionReport:
    """What one compaction did."""

    merged_files: int = 0
    written_files: int = 0
    kept_changed: list[str] = field(default_factory=list)
    skipped_corrupt: list[str] = field(default_factory=list)


def _signature(store: Store, path: str) -> tuple:
    info = store.fs.info(path)
    return (info.get("size"), info.get("mtime") or info.get("LastModified") or info.get("created"))


def _pair_keys(table: pa.Table) -> pa.Array:
    return pc.binary_join_element_wise(table["trial_key"], pc.fill_null(table["run_id"], ""), ":")


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The table with exactly the schema's columns (missing ones null), in the schema's order."""
    columns = [table[name].cast(f.type) if name in table.column_names else pa.nulls(table.num_rows, f.type)
               for name, f in zip(schema.names, schema)]
    return pa.Table.from_arrays(columns, schema=schema)


def compact_dir(store: Store, table_name: str, study_dir: str, report: CompactionReport,
                kill: Optional[KillPoint] = None) -> None:
    schema = TABLES[table_name]
    # Listed, never globbed: the store's path may hold glob characters (``isosweep.store.glob_escape``).
    files = sorted(store.list_files(study_dir, ".parquet"),
                   key=lambda p: (not os.path.basename(p).startswith(COMPACT_PREFIX), p))
    if len(files) < 2:
        return
    seen: set[str] = set()
    parts: list[pa.Table] = []
    inputs: list[tuple[str, tuple]] = []
    for path in files:
        try:
            signature = _signature(store, path)
            with store.fs.open(path, "rb") as f:
                table = pq.read_table(f, use_threads=False)
        except FileNotFoundError:
            continue  # removed meanwhile (another compaction); its rows are elsewhere
        except Exception:
            report.skipped_corrupt.append(path)
            continue
        pairs = _pair_keys(table)
        fresh = [p for p in pc.unique(pairs).to_pylist() if p not in seen]
        seen.update(fresh)
        parts.append(_conform(table.filter(pc.is_in(pairs, pa.array(fresh, pa.string()))), schema))
        inputs.append((path, signature))
    if len(inputs) < 2:
        return
    merged = pa.concat_tables(parts)
    out = f"{study_dir}/{COMPACT_PREFIX}{os.urandom(8).hex()}.parquet"
    store.write_table(out, merged)
    report.written_files += 1
    if kill:
        kill("after-write")
    for i, (path, signature) in enumerate(inputs):
        if kill and i == len(inputs) // 2:
            kill("mid-remove")
        try:
            if not os.path.basename(path).startswith(COMPACT_PREFIX) and _signature(store, path) != signature:
                report.kept_changed.append(path)
                continue
            store.fs.rm_file(path)  # one file: fsspec's rm() would expand glob characters in the path
            report.merged_files += 1
        except FileNotFoundError:
            continue


def compact(store: Store, kill: Optional[KillPoint] = None) -> CompactionReport:
    """Compact every table of the store; the trials table last."""
    report = CompactionReport()
    for table_name in WRITE_ORDER:
        for study_dir in store.study_dirs(table_name):
            compact_dir(store, table_name, study_dir, report, kill)
    return report
