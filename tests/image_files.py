"""Small generated files in the formats of the real image data sets (docs/method.md 5.2): MNIST's four
IDX files and a folder of aligned CelebA JPEGs, so that the loaders and the image studies run end to
end where the real copies are absent."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

MNIST_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: 0, 0, type 0x08, the number of dimensions, the sizes, the values."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def digit_images(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 28, 28) bytes: a bright blob at a random place on black, like a (very plain) digit."""
    yy, xx = np.mgrid[0:28, 0:28]
    cy, cx = rng.uniform(8, 20, size=(2, n, 1, 1))
    width = rng.uniform(2, 5, size=(n, 1, 1))
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2))
    return np.round(255 * blob).astype(np.uint8)


def write_mnist(root: Path, n_train: int = 96, n_test: int = 24, gz: bool = True, seed: int = 0) -> Path:
    """``root/mnist/`` with the four IDX files (gzip-compressed unless ``gz`` is False); returns root."""
    rng = np.random.default_rng(seed)
    folder = root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    arrays = (
        digit_images(n_train, rng),
        rng.integers(0, 10, n_train),
        digit_images(n_test, rng),
        rng.integers(0, 10, n_test),
    )
    for name, array in zip(MNIST_NAMES, arrays):
        data = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return root


def face_image(rng: np.random.Generator, width: int = 178, height: int = 218) -> np.ndarray:
    """(height, width, 3) bytes: a smooth random colour field with an ellipse, face-sized."""
    from PIL import Image

    coarse = (rng.random((6, 5, 3)) * 255).astype(np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.float64)
    yy, xx = np.mgrid[0:height, 0:width]
    inside = ((yy - height / 2) / (height / 3)) ** 2 + ((xx - width / 2) / (width / 3.5)) ** 2 < 1
    field[inside] = 0.5 * field[inside] + 0.5 * np.array([220.0, 180.0, 150.0])
    return np.clip(field, 0, 255).astype(np.uint8)


def write_celeba(root: Path, n: int = 30, seed: int = 0, size: tuple[int, int] = (178, 218)) -> Path:
    """``root/celeba/img_align_celeba/`` with ``n`` JPEGs named 000001.jpg, ... (178 x 218 like the
    real aligned images); returns root."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder = root / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        Image.fromarray(face_image(rng, *size)).save(folder / f"{i:06d}.jpg", quality=90)
    return root
