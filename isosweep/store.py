"""The results store: per-trial Parquet files under a local folder or any fsspec URL.

Layout (ARCHITECTURE.md): ``<store>/<table>/study=<study>/<trial_key>.parquet`` for the tables of
``isosweep.schema``, and ``<store>/artifacts/<trial_key>/<name>`` for a trial's files (images).
Every file is written atomically (a temporary name then a rename on local
disks; a single PUT on object stores), and a trial's ``trials`` file is written last, so a trial is
complete exactly when that file exists and a reader never sees half a trial.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from isosweep.errors import UsageError
from isosweep.paths import expand_home
from isosweep.schema import TABLES, WRITE_ORDER
from isosweep.trainers.config import SCIENCE_VERSION
from isosweep.trainers.records import TrialResult

DEFAULT_STORE = "./results"
# Files written by `isosweep compact` start with this; per-trial files are named by trial key.
COMPACT_PREFIX = "compact-"
ARTIFACTS = "artifacts"
"""Folder of the files kept beside a trial's rows: ``<store>/artifacts/<trial_key>/<name>``."""


PER_TRIAL_COMPRESSION = "snappy"
"""Compression of a trial's own files. Reading a one-row file costs mostly per-column setup, and
zstd's is the dearest: a 76-column trials file reads in 1.5 ms with snappy against 4.1 ms with zstd
(pyarrow 26, this machine), which is most of the time a sweep-end compaction spends."""


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


def result_tables(result: TrialResult, sweep: str, provenance: Mapping[str, Any]) -> dict[str, pa.Table]:
    """One trial's rows for every table, typed by the schema module."""
    cfg = result.config
    base = {"trial_key": result.key, "study": cfg.study, "run_id": uuid.uuid4().hex}
    config = cfg.to_dict()
    columns = set(TABLES["trials"].names)
    measured = {**result.scalars, **result.provenance, **provenance}
    unknown = set(measured) - columns
    if unknown:
        # A measurement without a column would be silently lost: refuse it instead.
        raise ValueError(f"trial row has columns the schema lacks: {sorted(unknown)}")
    # Every config field that has a column gets it (config_json holds all of them), except
    # ``epochs`` of a trial that trains by iterations: it never uses it, so its column is null.
    config_columns = {k: v for k, v in config.items() if k in columns}
    if cfg.iterations is not None:
        config_columns["epochs"] = None
    trial_row: dict[str, Any] = {
        **base, **config_columns, "sweep": sweep,
        "status": result.status.value, "error": result.error, "wall_s": result.wall_s,
        "started_at": result.started_at, "finished_at": result.finished_at,
        "science_version": SCIENCE_VERSION, "config_json": json.dumps(config, sort_keys=True), **measured,
    }
    n_points = len(next(iter(result.points.values()))) if result.points else 0
    points = {name: list(values) for name, values in result.points.items()}
    return {
        "trials": pa.Table.from_pylist([trial_row], schema=TABLES["trials"]),
        "dims": pa.Table.from_pylist([{**base, **d} for d in result.dims], schema=TABLES["dims"]),
        "curves": pa.Table.from_pylist([{**base, **c} for c in result.curves], schema=TABLES["curves"]),
        "points": pa.Table.from_pydict(
            {**{k: [v] * n_points for k, v in base.items()}, **points},
            schema=TABLES["points"]) if n_points else TABLES["points"].empty_table(),
    }


def replace_file(path: str, data: bytes, before_commit: Optional[Callable[[str], None]] = None) -> None:
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


@dataclass(frozen=True)
class StoredTrial:
    """One trial as the store holds it: the state columns of its trials row that finished last
    (``status`` holds the value of a ``TrialStatus`` of ``isosweep.trainers.records``)."""

    key: str
    study: str
    budget: str
    status: str
    finished_at: Any


def _instant(value: Optional[datetime]) -> datetime:
    return value or datetime.min.replace(tzinfo=timezone.utc)


STATE_COLUMNS = ("trial_key", "study", "budget", "status", "finished_at")

CommitHook = Callable[[str], None]
"""Called with a file's final path after its bytes are written and before they become visible."""


class Store:
    """A results store at a local path or fsspec URL."""

    def __init__(self, url: str, before_commit: Optional[CommitHook] = None):
        # ``~/x`` means the home folder's x for every part of a run: fsspec would expand it but the
        # workers, DuckDB and the messages see ``url``, so the url itself is expanded, once, here.
        self.url = url = expand_home(url, "store")
        self.before_commit = before_commit
        self.corrupt: list[str] = []
        """Files found unreadable by the last ``trial_states`` call."""
        try:
            self.fs, root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise UsageError(f"cannot open store {url!r}: {exc}") from None
        self.root = root.rstrip("/") or "/"
        self.local = isinstance(self.fs, LocalFileSystem)

    # -- paths -------------------------------------------------------------------------------
    def table_dir(self, table: str, study: Optional[str] = None) -> str:
        base = f"{self.root}/{table}"
        return f"{base}/study={study}" if study else base

    def file_path(self, table: str, study: str, key: str) -> str:
        return f"{self.table_dir(table, study)}/{key}.parquet"

    def table_files(self, table: str) -> list[str]:
        """Every Parquet file of ``table`` (per-trial and compacted), listed folder by folder:
        never through a glob of the store's path, which may hold ``*``, ``?`` or ``[``."""
        return sorted(path for study_dir in self.study_dirs(table) for path in self.list_files(study_dir, ".parquet"))

    def study_dirs(self, table: str) -> list[str]:
        """The ``study=<study>`` folders of ``table``."""
        return sorted(p for p, is_dir in self._entries(self.table_dir(table))
                      if is_dir and os.path.basename(p).startswith("study="))

    def list_files(self, directory: str, suffix: str) -> list[str]:
        """The files directly in ``directory`` whose names end with ``suffix``, hidden ones (the
        writers' temporary files) left out; none where the folder does not exist."""
        return sorted(p for p, is_dir in self._entries(directory)
                      if not is_dir and p.endswith(suffix) and not os.path.basename(p).startswith("."))

    def _entries(self, directory: str) -> list[tuple[str, bool]]:
        """(path, is a folder) of each entry of ``directory``, listed literally (no glob).

        On a local disk, symbolic links are left out: a link inside the store could point
        anywhere, and nothing isosweep writes is a link, so a link is never a store file."""
        if self.local:
            try:
                with os.scandir(directory) as it:
                    return [(f"{directory}/{e.name}", e.is_dir(follow_symlinks=False))
                            for e in it if not e.is_symlink()]
            except (FileNotFoundError, NotADirectoryError):
                return []
        # fsspec keeps one file system object per process and URL options, and s3fs (like other
        # object-store file systems) keeps every listing it made in it for that object's life: a
        # Ray worker that trains trial after trial would see the claims and the finished trials
        # of its first look, not the files other drivers wrote since. Every listing here decides
        # ownership or completeness, so it is always read from the store; the fresh listing then
        # serves the reads of the files it names.
        self.fs.invalidate_cache(directory)
        try:
            listing = self.fs.ls(directory, detail=True)
        except FileNotFoundError:
            return []
        return [(str(e["name"]).rstrip("/"), e.get("type") == "directory") for e in listing
                if str(e["name"]).rstrip("/") != directory.rstrip("/")]

    def links_below(self, directory: str) -> list[str]:
        """Symbolic links at or below ``directory`` on a local disk (none on object stores)."""
        if not self.local:
            return []
        if os.path.islink(directory):
            return [directory]
        found: list[str] = []
        for parent, dirs, files in os.walk(directory):
            for name in [*dirs, *files]:
                if os.path.islink(os.path.join(parent, name)):
                    found.append(os.path.join(parent, name))
        return found

    def exists(self) -> bool:
        """Whether the store's folder exists (a store is a folder; see ``check_usable``)."""
        if self.local:
            return os.path.isdir(self.root)
        try:
            return bool(self.fs.isdir(self.root))
        except Exception as exc:  # network, credentials, missing bucket
            raise UsageError(f"cannot reach store {self.url!r}: {type(exc).__name__}: {exc}") from None

    def require_existing(self) -> None:
        """UsageError unless the store exists: reading or compacting a mistyped path must not
        look like an empty store, nor create it."""
        if not self.exists():
            raise UsageError(f"store {self.url!r} does not exist; pass the folder or URL a sweep wrote to "
                             f"with --store (`isosweep run STUDY --store {self.url}` creates one)")

    def uri(self, path: str) -> str:
        """A path as DuckDB and users see it: local paths as they are, others with the protocol."""
        if self.local:
            return path
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return f"{protocol}://{path.lstrip('/')}" if protocol != "memory" else f"memory://{path}"

    # -- checks ------------------------------------------------------------------------------
    def check_usable(self, for_writing: bool) -> None:
        """Raise UsageError unless the store can be read (and, if asked, looks writable), without
        writing anything: a command refused later (a Ray cluster that cannot run it) must leave no
        trace. ``create`` makes the folder and proves it writable, right before the first write."""
        if self.local:
            path = os.path.abspath(self.root)
            if os.path.exists(path) and not os.path.isdir(path):
                raise UsageError(f"store {self.url!r} is a file, not a folder; pass a folder path or URL with --store")
            if for_writing:
                existing = path
                while not os.path.exists(existing):
                    existing = os.path.dirname(existing)
                if not os.path.isdir(existing):
                    raise UsageError(f"store {self.url!r} cannot be created: {existing} is a file; choose another --store")
                if not os.access(existing, os.W_OK | os.X_OK):
                    raise UsageError(f"store {self.url!r} is not writable ({existing}: permission denied); choose another --store")
            return
        try:
            if self.fs.exists(self.root) and self.fs.isfile(self.root):
                raise UsageError(f"store {self.url!r} is a file, not a folder; pass a folder URL with --store")
        except UsageError:
            raise
        except Exception as exc:  # network, credentials, missing bucket
            raise UsageError(f"cannot reach store {self.url!r}: {type(exc).__name__}: {exc}") from None

    def create(self) -> None:
        """Create the store's folder (local disk) and prove it writable with a probe file, as the
        writers will write; UsageError if it is not. Object stores have no folders to create."""
        self.check_usable(for_writing=True)
        if not self.local:
            return
        path = os.path.abspath(self.root)
        # Root may read and write almost anything, so permissions alone prove nothing: create the
        # folder and a probe file, as the writers will.
        try:
            os.makedirs(path, exist_ok=True)
            probe = os.path.join(path, f".probe-{uuid.uuid4().hex}")
            with open(probe, "wb"):
                pass
            os.remove(probe)
        except OSError as exc:
            raise UsageError(f"store {self.url!r} is not writable ({exc.strerror or exc}); choose another --store") from None

    # -- writing -----------------------------------------------------------------------------
    def artifact_path(self, key: str, name: str) -> str:
        """``<store>/artifacts/<trial_key>/<name>``: a file kept beside a trial's rows."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"artifact name {name!r} must be a plain file name")
        return f"{self.root}/{ARTIFACTS}/{key}/{name}"

    def read_artifact(self, key: str, name: str) -> Optional[bytes]:
        """The bytes of a trial's artifact, or None where it has none of that name."""
        try:
            with self.fs.open(self.artifact_path(key, name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write_table(self, path: str, table: pa.Table, compression: str = "zstd") -> None:
        """Write one Parquet file so that no reader ever sees it half-written. Large (compacted)
        files use zstd, which compresses best; a trial's own small files use PER_TRIAL_COMPRESSION."""
        buf = io.BytesIO()
        pq.write_table(table, buf, compression=compression)
        self.write_bytes(path, buf.getvalue())

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write one file so that no reader ever sees it half-written."""
        if self.local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            replace_file(path, data, self.before_commit)
        else:
            if self.before_commit is not None:
                self.before_commit(path)
            # Object stores make a single PUT visible all at once.
            self.fs.pipe_file(path, data)

    def write_result(self, result: TrialResult, sweep: str, provenance: Mapping[str, Any]) -> list[tuple[str, str, pa.Table]]:
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
    def trial_states(self, keys: Optional[Iterable[str]] = None) -> dict[str, StoredTrial]:
        """The recorded state of every trial in the store (or of ``keys``): per key, the trials
        row that finished last. Unreadable files are skipped and listed in ``self.corrupt``."""
        wanted = set(keys) if keys is not None else None
        for _ in range(5):
            try:
                return self._trial_states(wanted)
            except FileNotFoundError:
                # A file vanished between listing and reading: a compaction merged it into a new
                # file. List again, so that its rows are read from where they are now.
                continue
        return self._trial_states(wanted)

    def _trial_states(self, wanted: Optional[set[str]]) -> dict[str, StoredTrial]:
        rows = self._newest_rows(wanted, STATE_COLUMNS)
        return {key: StoredTrial(key, r["study"], r["budget"], r["status"], r["finished_at"]) for key, r in rows.items()}

    def trial_rows(self, columns: Iterable[str], keys: Optional[Iterable[str]] = None) -> dict[str, dict[str, Any]]:
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

    def _newest_rows(self, wanted: Optional[set[str]], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        self.corrupt = []
        for path in self.table_files("trials"):
            stem = os.path.basename(path)[: -len(".parquet")]
            if wanted is not None and stem not in wanted and not stem.startswith(COMPACT_PREFIX):
                continue
            try:
                with self.fs.open(path, "rb") as f:
                    # Single-threaded: Arrow's reader threads can abort the CLI at interpreter exit.
                    table = pq.read_table(f, columns=list(columns), use_threads=False)
            except FileNotFoundError:
                raise
            except Exception as exc:  # a damaged file must not hide the rest of the store
                self.corrupt.append(path)
                print(f"isosweep: warning: skipping unreadable file {self.uri(path)} ({type(exc).__name__}); "
                      "delete it and run the sweep again to recompute that trial", file=sys.stderr)
                continue
            for row in table.to_pylist():
                key = row["trial_key"]
                if wanted is not None and key not in wanted:
                    continue
                old = rows.get(key)
                if old is None or _instant(row["finished_at"]) > _instant(old["finished_at"]):
                    rows[key] = row
        return rows

    def completed_keys(self, keys: Optional[Iterable[str]] = None) -> set[str]:
        """Keys whose trial finished with status ``ok`` (failed and diverged ones are retried)."""
        return {k for k, s in self.trial_states(keys).items() if s.status == "ok"}
