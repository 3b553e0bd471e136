"""A user's data file for the studies that run on one (``isosweep run custom --data FILE``).

Before anything is planned, the file is read and checked (bad files are one line and exit 2, with
nothing written); its SHA-256, its feature columns and the network sized to them become trial
fields. When the sweep really runs, the file's bytes are copied into the store as
``<store>/inputs/<sha256>``: the store is reachable from every worker (a shared path or an object
store), so the workers read the file from there, and a resumed sweep finds it again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from isosweep.errors import UsageError
from isosweep.store import Store
from isosweep.studies import Study
from isosweep.trainers.data.custom import CustomTable, default_hidden, default_latent_dim, file_hash, read_custom
from isosweep.trainers.data.errors import DataError

INPUTS_DIR = "inputs"


@dataclass(frozen=True)
class UserData:
    """A checked data file and the trial fields it gives."""

    url: str
    data: bytes
    table: CustomTable
    latent_dim: int

    @property
    def data_hash(self) -> str:
        return file_hash(self.data)

    def fields(self) -> dict[str, Any]:
        """TrialConfig fields that come from the file: its identity, its columns, the network."""
        return {
            "data_hash": self.data_hash,
            "features": self.table.features,
            "density_column": self.table.density_column,
            "latent_dim": self.latent_dim,
            "hidden": default_hidden(self.table.input_dim),
        }

    def describe(self) -> str:
        density = (
            f", density column {self.table.density_column!r}" if self.table.density_column else ", no density column"
        )
        return (
            f"data {self.url}: {self.table.rows} rows, {self.table.input_dim} features ({', '.join(self.table.features)})"
            f"{density}; sha256 {self.data_hash[:16]}...; network {self.fields()['hidden']}, latent {self.latent_dim}"
        )


def parse_features(text: str | None) -> tuple[str, ...] | None:
    """``a,b,c`` into column names; None when not given (every numeric column)."""
    if text is None:
        return None
    names = tuple(part.strip() for part in text.split(","))
    if not names or any(not n for n in names):
        raise UsageError(f"--features {text!r} has an empty column name; write e.g. --features x1,x2,x3")
    return names


def load_user_data(
    study: Study,
    data: str | None,
    features: str | None,
    density_column: str | None,
    latent_dim: int | None,
    data_root: str | None = None,
) -> UserData | None:
    """Read and check the user's data file for ``study``; None for studies that take none.
    UsageError (one line) on a bad file or options that do not apply."""
    given = [
        flag
        for flag, value in (
            ("--data", data),
            ("--features", features),
            ("--density-column", density_column),
            ("--latent-dim", latent_dim),
        )
        if value is not None
    ]
    if not study.needs_user_data:
        if given:
            raise UsageError(f"{given[0]} applies to studies that run on your own data (custom), not to {study.name!r}")
        return None
    if data is None:
        raise UsageError(
            f"study {study.name!r} runs on your own data: pass --data FILE (a CSV or Parquet file of "
            "feature columns), e.g. `isosweep run custom --data my.csv --density-column p`"
        )
    if data_root is not None:
        raise UsageError(f"--data-root does not apply to study {study.name!r}: its data come from --data FILE")
    try:
        table, raw = read_custom(data, parse_features(features), density_column)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    if latent_dim is not None and latent_dim < 1:
        raise UsageError(f"--latent-dim {latent_dim} must be at least 1")
    return UserData(data, raw, table, latent_dim or default_latent_dim(table.input_dim))


def stage(store: Store, user: UserData) -> str:
    """Copy the file's bytes to ``<store>/inputs/<sha256>`` (once: the name is the content, so a
    file already there holds these bytes) with the store's atomic write, and return that folder as
    the workers' data root."""
    folder = f"{store.root}/{INPUTS_DIR}"
    path = f"{folder}/{user.data_hash}"
    if not store.fs.exists(path):
        store.write_bytes(path, user.data)
    return os.path.abspath(folder) if store.local else store.uri(folder)
