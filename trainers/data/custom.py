"""A user's own data set: the feature columns of a CSV or Parquet file, optionally with the true
density of each row (study ``custom``).

Identity by content: a trial records the SHA-256 of the file's bytes (``data_hash``), the feature
columns it uses (``features``) and the density column (``density_column``), never the file's path.
The CLI checks the file before anything starts (:func:`read_custom`) and copies its bytes to
``<data root>/<data_hash>`` where every worker reads them (:func:`load_custom`), checking the hash.

Preparation, the same for every trial of a file **(choice)**:

- The features are centred and scaled by one common factor so that their total variance is 7/2,
  the toy data's (docs/method.md 5.1). One factor for all columns keeps the data's geometry (distances,
  the PCA-like ranking of directions the study measures), and the common scale makes lambda and the
  ``dconv``/``uconv`` metrics (whose ``a(u)`` averages 1 at total variance 7/2) mean what they mean
  on the toy data. The true log-density moves by the constant ``-m log(factor)``, which leaves every
  correlation unchanged.
- Rows are split by the trial's seed: a seeded permutation, whose first ``EVAL_FRACTION`` of the
  rows (at most ``n_eval``, at least 1) are evaluated and the rest (at most ``n_train``) trained on.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import fsspec
import numpy as np
import pyarrow as pa

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data.arrays import TrialData
from isosweep.trainers.data.errors import DataError, first_line

CUSTOM_DATASET = "custom"
EVAL_FRACTION = 0.2
TOTAL_VARIANCE = 3.5
"""Total variance of the prepared features: the toy data's 1/6 + 2/3 + 8/3."""
SPLIT_STREAM = 8
PARQUET_MAGIC = b"PAR1"


def file_hash(data: bytes) -> str:
    """The identity of a data file: SHA-256 of its bytes, in hex."""
    return hashlib.sha256(data).hexdigest()


def is_custom_dataset(name: str) -> bool:
    return name == CUSTOM_DATASET


def read_bytes(url: str) -> bytes:
    """The bytes of a local file or fsspec URL; DataError (one line) when it cannot be read."""
    try:
        with fsspec.open(url, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise DataError(f"{url}: no such file; pass a CSV or Parquet file of feature columns with --data") from None
    except IsADirectoryError:
        raise DataError(f"{url}: is a folder; pass a CSV or Parquet file of feature columns with --data") from None
    except Exception as exc:  # permissions, network, unknown protocol
        raise DataError(f"{url}: cannot be read ({type(exc).__name__}: {first_line(exc)})") from None


def parse_table(data: bytes, name: str) -> pa.Table:
    """A Parquet file (told by its magic bytes) or a CSV file with a header row, as an Arrow table."""
    if not data.strip():
        raise DataError(f"{name}: is empty; expected a CSV file with a header row, or a Parquet file")
    # One thread: Arrow's thread pools, once started, can abort the process at exit ("terminate
    # called without an active exception", seen in about 1 of 20 runs of the CLI).
    try:
        if data[:4] == PARQUET_MAGIC:
            import pyarrow.parquet as pq  # the readers load when a file of their format is read

            table = pq.read_table(pa.BufferReader(data), use_threads=False)
        else:
            import pyarrow.csv as pcsv

            table = pcsv.read_csv(pa.BufferReader(data), read_options=pcsv.ReadOptions(use_threads=False))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"{name}: not a readable CSV or Parquet file ({first_line(exc)})") from None
    # Columns are chosen by name: two of one name would make the choice ambiguous (and Arrow's
    # lookup by name fails on them).
    names = table.column_names
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise DataError(
            f"{name}: column {twice!r} appears {names.count(twice)} times in the header; give every column its own name"
        )
    return table


def _is_numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def _first_non_number(column: pa.ChunkedArray) -> tuple[int, str]:
    for i, value in enumerate(column.to_pylist()):
        if value is None:
            continue
        try:
            float(value)
        except (TypeError, ValueError):
            return i, str(value)
    return -1, ""


def _numbers_or_text(table: pa.Table, column: str, name: str) -> bool:
    """Whether a column is a feature by default: True for numbers, False for text (labels, ids);
    a text column of which some values are numbers is a typo in a numeric column: DataError."""
    values = table.column(column)
    if _is_numeric(values.type):
        return True
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        texts = [v for v in values.to_pylist() if v is not None]
        if any(_parses(v) for v in texts):
            _as_float(table, column, name)  # raises, naming the first value that is not a number
    return False


def _parses(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _as_float(table: pa.Table, column: str, name: str) -> np.ndarray:
    values = table.column(column)
    if not _is_numeric(values.type):
        row, text = _first_non_number(values)
        where = f"row {row + 1} holds {text[:40]!r}" if row >= 0 else f"its type is {values.type}"
        raise DataError(f"{name}: column {column!r} is not numeric ({where}); pass numeric columns with --features")
    out = np.asarray(values.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{name}: column {column!r} has {int(bad.sum())} missing, NaN or infinite value(s) "
            f"(first in row {row + 1}); remove or fill those rows"
        )
    return out


@dataclass(frozen=True)
class CustomTable:
    """A user's data as the study uses it, before preparation."""

    x: np.ndarray
    """(rows, m) float64 feature values, in the order of ``features``."""
    log_p: np.ndarray | None
    """log of the density column, or None without one."""
    features: tuple[str, ...]
    density_column: str | None

    @property
    def rows(self) -> int:
        return int(self.x.shape[0])

    @property
    def input_dim(self) -> int:
        return int(self.x.shape[1])


def select(
    table: pa.Table, name: str, features: Sequence[str] | None = None, density_column: str | None = None
) -> CustomTable:
    """The feature and density columns of ``table``, checked: present, numeric, finite, at least
    two rows and a non-negative density. ``features`` None: every numeric column but the density
    one, in file order (text columns such as labels are left out, but a text column holding some
    numbers is refused as a typo). DataError (one line) otherwise."""
    columns = list(table.column_names)
    if density_column is not None and density_column not in columns:
        raise DataError(
            f"{name}: has no column {density_column!r} for --density-column; its columns are: {', '.join(columns)}"
        )
    if table.num_rows < 2:
        raise DataError(
            f"{name}: has {table.num_rows} row(s); the custom study needs at least 2 "
            "(rows are split into training and evaluation)"
        )
    if features is None:
        chosen = [c for c in columns if c != density_column and _numbers_or_text(table, c, name)]
        if not chosen:
            raise DataError(
                f"{name}: has no numeric column to use as a feature (columns: {', '.join(columns)}); "
                "name them with --features"
            )
    else:
        chosen = list(features)
        if not chosen:
            raise DataError("--features is empty; name the feature columns, e.g. --features x1,x2,x3")
        duplicates = sorted({c for c in chosen if chosen.count(c) > 1})
        if duplicates:
            raise DataError(f"--features names {duplicates[0]!r} twice; name each column once")
        missing = [c for c in chosen if c not in columns]
        if missing:
            raise DataError(
                f"{name}: has no column(s) {', '.join(map(repr, missing))}; its columns are: {', '.join(columns)}"
            )
        if density_column in chosen:
            raise DataError(f"--features names the density column {density_column!r}; the density is not a feature")
    x = np.stack([_as_float(table, c, name) for c in chosen], axis=1)
    if not (x.std(axis=0) > 0).any():
        raise DataError(f"{name}: every feature column is constant; there is nothing to learn")
    log_p = None
    if density_column is not None:
        p = _as_float(table, density_column, name)
        if (p < 0).any():
            row = int(np.argmax(p < 0))
            raise DataError(
                f"{name}: density column {density_column!r} is negative in row {row + 1}; "
                "it must hold the density p(x) >= 0 of each row"
            )
        with np.errstate(divide="ignore"):
            log_p = np.log(p)
    return CustomTable(x, log_p, tuple(chosen), density_column)


def read_custom(
    url: str, features: Sequence[str] | None = None, density_column: str | None = None
) -> tuple[CustomTable, bytes]:
    """Read and check a user's data file; returns its table and its bytes (whose hash is its identity)."""
    data = read_bytes(url)
    return select(parse_table(data, url), url, features, density_column), data


def default_hidden(input_dim: int) -> tuple[int, int]:
    """Hidden widths for m input features: the toy network's (128, 64) up to m = 16, then (8m, 4m),
    at most (1024, 512). Narrower networks train poorly here: on a 3-D Gaussian, (24, 12) left a
    dimension inactive and norms far from 1 where (128, 64) gave norms 1.00-1.02."""
    return (min(1024, max(128, 8 * input_dim)), min(512, max(64, 4 * input_dim)))


def default_latent_dim(input_dim: int) -> int:
    """Latent size for m input features: m, at most 16. Dimensions the data do not need come out
    inactive (KL about 0), which the study measures, so a generous size loses nothing."""
    return min(input_dim, 16)


def prepare(x: np.ndarray, log_p: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Centre, and scale by one common factor to total variance 7/2; the log-density follows the
    change of variables (a constant shift)."""
    centred = x - x.mean(axis=0)
    total = float(centred.var(axis=0).sum())
    factor = math.sqrt(TOTAL_VARIANCE / total)
    if log_p is not None:
        log_p = log_p - x.shape[1] * math.log(factor)
    return centred * factor, log_p


def split_rows(rows: int, seed: int, n_train: int, n_eval: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, eval) of one seed: a seeded permutation, whose first EVAL_FRACTION of the
    rows (at most ``n_eval``, at least 1) are evaluated and the rest (at most ``n_train``) trained on."""
    order = np.random.default_rng([seed, SPLIT_STREAM]).permutation(rows)
    n_ev = max(1, min(n_eval, int(round(EVAL_FRACTION * rows))))
    return order[n_ev:][:n_train], order[:n_ev]


def load_custom(cfg: TrialConfig, root: str | None) -> TrialData:
    """The data of one ``custom`` trial, read from ``<root>/<data_hash>``."""
    if not cfg.data_hash:
        raise DataError("a custom trial needs data_hash (the SHA-256 of its data file)")
    if not root:
        raise DataError(
            "the custom study's data file is read from the data root; run it with "
            "`isosweep run custom --data FILE`, which puts the file there"
        )
    url = f"{root.rstrip('/')}/{cfg.data_hash}"
    data = read_bytes(url)
    if file_hash(data) != cfg.data_hash:
        raise DataError(
            f"{url}: its bytes do not match its SHA-256 name; run `isosweep run custom --data FILE` "
            "again to put a fresh copy there"
        )
    table = select(parse_table(data, url), url, cfg.features, cfg.density_column)
    x, log_p = prepare(table.x, table.log_p)
    train, evaluation = split_rows(table.rows, cfg.seed, cfg.n_train, cfg.n_eval)
    return TrialData(x[train], x[evaluation], log_p[evaluation] if log_p is not None else None)
