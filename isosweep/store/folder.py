"""Where a store is and how its files are reached: a local folder or any fsspec URL, its paths
(``isosweep.store.layout``), literal listings (never a glob of the user's path), the checks before
a run, and writes that no reader sees half done (``isosweep.store.writing``)."""

from __future__ import annotations

import io
import os
import uuid

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from isosweep.errors import UsageError
from isosweep.paths import expand_home
from isosweep.store.layout import ARTIFACTS
from isosweep.store.writing import CommitHook, replace_file


class StoreFolder:
    """The folder of a results store at a local path or fsspec URL, and its files. ``Store``
    (``isosweep.store.trials``) adds the trials written in it."""

    def __init__(self, url: str, before_commit: CommitHook | None = None):
        # ``~/x`` means the home folder's x for every part of a run: fsspec would expand it but the
        # workers, DuckDB and the messages see ``url``, so the url itself is expanded, once, here.
        self.url = url = expand_home(url, "store")
        self.before_commit = before_commit
        try:
            self.fs, root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise UsageError(f"cannot open store {url!r}: {exc}") from None
        self.root = root.rstrip("/") or "/"
        self.local = isinstance(self.fs, LocalFileSystem)

    # -- paths -------------------------------------------------------------------------------
    def table_dir(self, table: str, study: str | None = None) -> str:
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
        return [p for p in self.list_folders(self.table_dir(table)) if os.path.basename(p).startswith("study=")]

    def list_folders(self, directory: str) -> list[str]:
        """The folders directly in ``directory``; none where it does not exist."""
        return sorted(p for p, is_dir in self._entries(directory) if is_dir)

    def list_files(self, directory: str, suffix: str) -> list[str]:
        """The files directly in ``directory`` whose names end with ``suffix``, hidden ones (the
        writers' temporary files) left out; none where the folder does not exist."""
        return sorted(
            p
            for p, is_dir in self._entries(directory)
            if not is_dir and p.endswith(suffix) and not os.path.basename(p).startswith(".")
        )

    def _entries(self, directory: str) -> list[tuple[str, bool]]:
        """(path, is a folder) of each entry of ``directory``, listed literally (no glob).

        On a local disk, symbolic links are left out: a link inside the store could point
        anywhere, and nothing isosweep writes is a link, so a link is never a store file."""
        if self.local:
            try:
                with os.scandir(directory) as it:
                    return [
                        (f"{directory}/{e.name}", e.is_dir(follow_symlinks=False)) for e in it if not e.is_symlink()
                    ]
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
        return [
            (str(e["name"]).rstrip("/"), e.get("type") == "directory")
            for e in listing
            if str(e["name"]).rstrip("/") != directory.rstrip("/")
        ]

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
            raise UsageError(
                f"store {self.url!r} does not exist; pass the folder or URL a sweep wrote to "
                f"with --store (`isosweep run STUDY --store {self.url}` creates one)"
            )

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
                    raise UsageError(
                        f"store {self.url!r} cannot be created: {existing} is a file; choose another --store"
                    )
                if not os.access(existing, os.W_OK | os.X_OK):
                    raise UsageError(
                        f"store {self.url!r} is not writable ({existing}: permission denied); choose another --store"
                    )
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
            raise UsageError(
                f"store {self.url!r} is not writable ({exc.strerror or exc}); choose another --store"
            ) from None

    # -- writing -----------------------------------------------------------------------------
    def artifact_path(self, key: str, name: str) -> str:
        """``<store>/artifacts/<trial_key>/<name>``: a file kept beside a trial's rows."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"artifact name {name!r} must be a plain file name")
        return f"{self.root}/{ARTIFACTS}/{key}/{name}"

    def read_artifact(self, key: str, name: str) -> bytes | None:
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
