"""``Store``: the trials in a store. A trial's rows are written file by file, its ``trials``
file last (``Store.write_result``); its recorded state is the trials row that finished last,
checked against the rows that readable files of the other tables hold (``Store.trial_states``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from isosweep.schema import WRITE_ORDER
from isosweep.store.folder import StoreFolder
from isosweep.store.layout import (
    ALWAYS_WRITTEN,
    COMPACT_PREFIX,
    IDENTITY,
    PER_TRIAL_COMPRESSION,
    READ_THREADS,
    ROW_COUNTS,
    STATE_COLUMNS,
)
from isosweep.store.reading import read_store_file, unreadable_reason
from isosweep.store.rows import result_tables
from isosweep.store.writing import CommitHook
from isosweep.trainers.records import TrialResult

_WARNED: set[str] = set()
"""Unreadable files this process has warned of: each is named once, however often it is read."""


@dataclass(frozen=True)
class StoredTrial:
    """One trial as the store holds it: the state columns of its trials row that finished last
    (``status`` holds the value of a ``TrialStatus`` of ``isosweep.trainers.records``), and the
    tables whose rows of that run no readable file holds (checked for ok trials only)."""

    key: str
    study: str
    budget: str
    status: str
    finished_at: Any
    missing: tuple[str, ...] = ()

    @property
    def state(self) -> str:
        """What ``status`` and a run's counts call it: ``damaged`` for an ok trial missing a
        table, else its recorded status."""
        return "damaged" if self.missing else self.status

    @property
    def complete(self) -> bool:
        """Finished ok with every table readable: the one test of "done" that the planner, the
        workers and ``status`` share. A damaged trial is trained again by the next run."""
        return self.status == "ok" and not self.missing


def _instant(value: datetime | None) -> datetime:
    return value or datetime.min.replace(tzinfo=timezone.utc)


class Store(StoreFolder):
    """A results store at a local path or fsspec URL: its folder and files (``StoreFolder``), the
    trials written in it, and the recorded state of each."""

    def __init__(self, url: str, before_commit: CommitHook | None = None, warn: bool = True):
        super().__init__(url, before_commit)
        self.warn = warn
        """Whether an unreadable file is named on stderr when found (the driver's readers do; a
        Ray worker's would repeat it in the driver's output, late and out of order)."""
        self.corrupt: list[str] = []
        """Files found unreadable by the last ``trial_states`` call."""
        self._counts: dict[str, dict[tuple[str, Any], int]] = {}
        """Per compacted file read by ``trial_states``: its rows per (trial_key, run_id)."""

    # -- writing -----------------------------------------------------------------------------
    def write_result(
        self, result: TrialResult, sweep: str, provenance: Mapping[str, Any]
    ) -> list[tuple[str, str, pa.Table]]:
        """Write one trial's artifacts, then its rows; its ``trials`` file last. Returns (table,
        path, rows) of each file written."""
        tables = result_tables(result, sweep, provenance)
        for name, data in result.artifacts.items():
            self.write_bytes(self.artifact_path(result.key, name), data)
        written = []
        for name in WRITE_ORDER:
            path = self.file_path(name, result.config.study, result.key)
            self.write_table(path, tables[name], PER_TRIAL_COMPRESSION)
            written.append((name, path, tables[name]))
        return written

    # -- reading -----------------------------------------------------------------------------
    def trial_states(self, keys: Iterable[str] | None = None) -> dict[str, StoredTrial]:
        """The recorded state of every trial in the store (or of ``keys``): per key, the trials
        row that finished last, and for an ok one the tables it lacks (``StoredTrial.missing``).
        Unreadable files are skipped and listed in ``self.corrupt``."""
        wanted = set(keys) if keys is not None else None
        for _ in range(5):
            try:
                return self._trial_states(wanted)
            except FileNotFoundError:
                # A file vanished between listing and reading: a compaction merged it into a new
                # file. List again, so that its rows are read from where they are now.
                continue
        return self._trial_states(wanted)

    def _trial_states(self, wanted: set[str] | None) -> dict[str, StoredTrial]:
        # The trials rows first, then the other tables: a trial's other files are written (and
        # merged) before its trials file, so they are in place by the time its row is read.
        rows = self._newest_rows(wanted, [*STATE_COLUMNS, *ROW_COUNTS.values()])
        missing = self._missing_tables(rows, whole=wanted is None)
        return {
            key: StoredTrial(key, r["study"], r["budget"], r["status"], r["finished_at"], missing.get(key, ()))
            for key, r in rows.items()
        }

    def trial_rows(self, columns: Iterable[str], keys: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Per key (all, or ``keys``), the ``columns`` of the trials row that finished last.
        Unreadable files are skipped and listed in ``self.corrupt``, as for ``trial_states``."""
        wanted = set(keys) if keys is not None else None
        columns = list(dict.fromkeys([*STATE_COLUMNS, *columns]))
        for _ in range(5):
            try:
                return self._newest_rows(wanted, columns)
            except FileNotFoundError:
                continue  # merged away by a compaction: list again (see trial_states)
        return self._newest_rows(wanted, columns)

    def completed_keys(self, keys: Iterable[str] | None = None) -> set[str]:
        """Keys of complete trials (``StoredTrial.complete``): failed, diverged and damaged ones
        are run again."""
        return {k for k, s in self.trial_states(keys).items() if s.complete}

    def _files_of(self, table: str, studies: Iterable[str] | None, wanted: set[str] | None) -> list[str]:
        """The files of ``table`` (of ``studies``, or all) that may hold rows of ``wanted`` keys
        (all where None): every compacted file, and the per-trial files of those keys."""
        chosen = None if studies is None else {f"study={study}" for study in studies}
        # Listed and filtered, not joined: a study name read from a file is never made a path.
        dirs = [d for d in self.study_dirs(table) if chosen is None or os.path.basename(d) in chosen]
        files = []
        for directory in dirs:
            for path in self.list_files(directory, ".parquet"):
                stem = os.path.basename(path)[: -len(".parquet")]
                if wanted is None or stem in wanted or stem.startswith(COMPACT_PREFIX):
                    files.append(path)
        return files

    def _read_files(
        self, paths: Sequence[str], table: str, columns: Sequence[str], dictionary: Sequence[str] = ()
    ) -> list[tuple[str, Any]]:
        """(path, rows or the exception that made it unreadable) of each file (``read_store_file``),
        read in parallel (an object store answers each read after a round trip).
        FileNotFoundError if one vanished."""

        def read(path: str) -> tuple[str, Any]:
            try:
                return path, read_store_file(self, path, table, columns, dictionary)
            except FileNotFoundError:
                raise
            except Exception as exc:  # a damaged or foreign file must not hide the rest of the store
                return path, exc

        if len(paths) <= 1:
            return [read(path) for path in paths]
        with ThreadPoolExecutor(READ_THREADS) as pool:
            return list(pool.map(read, paths))

    def _unreadable(self, path: str, exc: BaseException) -> None:
        """Note an unreadable file in ``self.corrupt`` and say so once on stderr, with the fix."""
        if path in self.corrupt:
            return
        self.corrupt.append(path)
        if path in _WARNED or not self.warn:
            return
        _WARNED.add(path)
        print(
            f"isosweep: warning: skipping unreadable file {self.uri(path)} ({unreadable_reason(exc)}); "
            "delete it and run the sweep again to recompute its trials",
            file=sys.stderr,
        )

    def _newest_rows(self, wanted: set[str] | None, columns: Sequence[str]) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        self.corrupt = []
        for path, table in self._read_files(self._files_of("trials", None, wanted), "trials", columns):
            if isinstance(table, BaseException):
                self._unreadable(path, table)
                continue
            for row in table.to_pylist():
                key = row["trial_key"]
                if wanted is not None and key not in wanted:
                    continue
                if any(row[name] is None for name in IDENTITY):
                    continue  # not a row isosweep wrote (see IDENTITY): the query views leave it out too
                old = rows.get(key)
                if old is None or _instant(row["finished_at"]) > _instant(old["finished_at"]):
                    rows[key] = row
        return rows

    def _missing_tables(self, rows: Mapping[str, Mapping[str, Any]], whole: bool) -> dict[str, tuple[str, ...]]:
        """Per ok trial of ``rows`` that is damaged, the tables in which no readable file holds
        its run's rows in the number its trials row records (ROW_COUNTS; where that is null, a
        row written by an older version: any rows at all, in ALWAYS_WRITTEN). ``whole``: read
        every file of those tables, so that ``self.corrupt`` lists every unreadable one (else
        only the files that may hold rows of ``rows``)."""
        missing: dict[str, list[str]] = {}
        for table, column in ROW_COUNTS.items():
            expected: dict[tuple[str, Any], int | None] = {}
            for key, row in rows.items():
                if row["status"] != "ok":
                    continue
                count = row.get(column)
                if count is None and table in ALWAYS_WRITTEN:
                    expected[(key, row["run_id"])] = None
                elif count:
                    expected[(key, row["run_id"])] = int(count)
            if not expected and not whole:
                continue
            keys = {key for key, _ in expected}
            held = self._held_rows(
                table, None if whole else {rows[key]["study"] for key in keys}, None if whole else keys
            )
            for pair, count in expected.items():
                found = held.get(pair, ())
                if not any(n == count if count is not None else n > 0 for n in found):
                    missing.setdefault(pair[0], []).append(table)
        return {key: tuple(tables) for key, tables in missing.items()}

    def _held_rows(
        self, table: str, studies: Iterable[str] | None, keys: set[str] | None
    ) -> dict[tuple[str, Any], list[int]]:
        """Per (trial_key, run_id) pair (of ``keys``; all where None), the number of its rows in
        each readable file of ``table`` (of ``studies``; all where None) that holds it. Only the
        two key columns are read, and a compacted file's counts are kept for the life of this
        Store: its name is new at every write, so its content never changes."""
        held: dict[tuple[str, Any], list[int]] = {}
        files = self._files_of(table, studies, keys)
        cached = [path for path in files if path in self._counts]
        key_columns = ("trial_key", "run_id")
        read = self._read_files([path for path in files if path not in self._counts], table, key_columns, key_columns)
        counted = [(path, self._counts[path]) for path in cached]
        for path, rows in read:
            if isinstance(rows, BaseException):
                self._unreadable(path, rows)
                continue
            counts = _pair_counts(rows)
            if os.path.basename(path).startswith(COMPACT_PREFIX):
                self._counts[path] = counts
            counted.append((path, counts))
        for _, counts in counted:
            for pair, n in counts.items():
                if keys is None or pair[0] in keys:
                    held.setdefault(pair, []).append(n)
        return held


def _pair_counts(rows: pa.Table) -> dict[tuple[str, Any], int]:
    """Rows per (trial_key, run_id) pair of a table of those two columns."""
    if not rows.num_rows:
        return {}
    grouped = rows.group_by(["trial_key", "run_id"]).aggregate([([], "count_all")])
    return dict(
        zip(zip(grouped["trial_key"].to_pylist(), grouped["run_id"].to_pylist()), grouped["count_all"].to_pylist())
    )
