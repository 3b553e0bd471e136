"""MNIST (docs/method.md 5.2) from the four standard IDX files under ``<data root>/mnist/``.

LeCun, Cortes, Burges, "The MNIST database of handwritten digits": ``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each
gzip-compressed (``.gz``) or not. An IDX file is a big-endian header (two zero bytes, the type code
0x08 for unsigned bytes, the number of dimensions, then each dimension as a 32-bit integer) followed
by the values. Pixels become floats in [0, 1] (value / 255), flattened to 784.

Training images are the first ``n_train`` of the training file, held-out images the first
``n_eval`` of the test file **(choice)**. The labels are read and checked (one per image) but not
used. A missing or malformed file raises :class:`DataError` naming the file and what was expected.
"""

from __future__ import annotations

import functools
import gzip
import struct
from dataclasses import dataclass

import numpy as np

from isosweep.trainers.data.errors import DataError, first_line, require_root, root_fs

FOLDER = "mnist"
FILES = {
    "train_images": ("train-images-idx3-ubyte", 3),
    "train_labels": ("train-labels-idx1-ubyte", 1),
    "test_images": ("t10k-images-idx3-ubyte", 3),
    "test_labels": ("t10k-labels-idx1-ubyte", 1),
}
UBYTE = 0x08
IMAGE_SHAPE = (28, 28)
EXPECTED = "an IDX file of unsigned bytes (gzip or plain), as distributed with MNIST"
HOLDS = f"{FOLDER}/ with the four MNIST IDX files ({', '.join(name for name, _ in FILES.values())}, each .gz or not)"


@dataclass(frozen=True)
class MnistArrays:
    """The MNIST images as stored: (n, 28, 28) unsigned bytes."""

    train: np.ndarray
    test: np.ndarray


def find_files(root: str | None) -> dict[str, str]:
    """The path of each of the four files under ``root``; DataError naming the first one missing."""
    root = require_root(root, "mnist", HOLDS)
    fs, base = root_fs(root)
    try:
        if not fs.isdir(base):
            what = "does not exist" if not fs.exists(base) else "is not a folder"
            raise DataError(f"data root {root!r} {what}; pass the folder that holds {HOLDS} with --data-root")
        found = {}
        for key, (name, _) in FILES.items():
            for candidate in (f"{base}/{FOLDER}/{name}.gz", f"{base}/{FOLDER}/{name}"):
                if fs.isfile(candidate):
                    found[key] = candidate
                    break
            else:
                raise DataError(
                    f"{root.rstrip('/')}/{FOLDER}/{name}(.gz): not found; data set 'mnist' needs the "
                    f"four MNIST IDX files in {root.rstrip('/')}/{FOLDER}/"
                )
    except DataError:
        raise
    except Exception as exc:  # network, credentials, permissions
        raise DataError(f"cannot read data root {root!r}: {type(exc).__name__}: {first_line(exc)}") from None
    return found


def parse_idx(raw: bytes, path: str, ndim: int) -> np.ndarray:
    """The array of an IDX file's bytes (gunzipped if they are gzip), checked to have ``ndim``
    dimensions of unsigned bytes and exactly as many values as the header says."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: broken gzip data ({first_line(exc)}); expected {EXPECTED}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: does not start with an IDX header; expected {EXPECTED}")
    if raw[2] != UBYTE or raw[3] != ndim:
        raise DataError(
            f"{path}: IDX type 0x{raw[2]:02x} with {raw[3]} dimension(s); expected type 0x08 "
            f"(unsigned bytes) with {ndim}"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: the IDX header is cut off; expected {EXPECTED}")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise DataError(
            f"{path}: the header gives shape {shape} ({size} values) but the file holds "
            f"{len(raw) - header}; expected {EXPECTED}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read(path: str, root: str) -> bytes:
    fs, _ = root_fs(root)
    try:
        with fs.open(path, "rb") as f:
            return f.read()
    except Exception as exc:
        raise DataError(f"{path}: cannot be read ({type(exc).__name__}: {first_line(exc)})") from None


@functools.lru_cache(maxsize=1)
def load_mnist(root: str) -> MnistArrays:
    """Read and check the four files: images (n, 28, 28) with one label (0-9) per image."""
    paths = find_files(root)
    arrays = {key: parse_idx(_read(paths[key], root), paths[key], FILES[key][1]) for key in FILES}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        path = paths[f"{split}_images"]
        if images.shape[1:] != IMAGE_SHAPE or images.shape[0] < 1:
            raise DataError(
                f"{path}: holds images of shape {images.shape[1:]} ({images.shape[0]} of them); "
                f"expected at least one image of {IMAGE_SHAPE[0]} x {IMAGE_SHAPE[1]} pixels"
            )
        if labels.shape[0] != images.shape[0]:
            raise DataError(
                f"{paths[f'{split}_labels']}: holds {labels.shape[0]} labels for {images.shape[0]} "
                f"images in {path}; expected one label per image"
            )
        if labels.size and labels.max() > 9:
            raise DataError(f"{paths[f'{split}_labels']}: holds labels above 9; expected digits 0-9")
    return MnistArrays(arrays["train_images"], arrays["test_images"])


def mnist_split(root: str, n_train: int, n_eval: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out images as float32 (n, 784) in [0, 1]: the first ``n_train`` of the
    training file and the first ``n_eval`` of the test file (fewer where a file holds fewer)."""
    arrays = load_mnist(root)
    train = arrays.train[:n_train].reshape(-1, IMAGE_SHAPE[0] * IMAGE_SHAPE[1]).astype(np.float32) / 255.0
    test = arrays.test[:n_eval].reshape(-1, IMAGE_SHAPE[0] * IMAGE_SHAPE[1]).astype(np.float32) / 255.0
    return train, test
