"""CelebA (docs/method.md 5.2) from the aligned JPEGs under ``<data root>/celeba/img_align_celeba/``.

Liu, Luo, Wang, Tang, "Deep learning face attributes in the wild", ICCV 2015: 202,599 aligned and
cropped faces of 178 x 218 pixels, named ``000001.jpg`` ... ``202599.jpg``. Each image is centre-
cropped to 178 x 178 and resized to 64 x 64 with PIL's antialiased bilinear filter **(choice, as
the predecessor paper; the same as torchvision's CenterCrop(178) and Resize(64) on PIL images)**,
RGB in [0, 1].

Split by file-name order **(choice)**: the last ``n_eval`` images are held out and the first
``n_train`` of the rest are trained on; on the full set the last 19,962 images are the official
test partition, and the first 162,770 the official training partition.

Images are decoded in DataLoader workers (:class:`CelebAImages`), as unsigned bytes, so that a
batch crosses to the GPU at a quarter of the size of floats. A missing folder or an image that
cannot be decoded raises :class:`DataError` naming the file and what was expected.
"""

from __future__ import annotations

import functools
import io

import fsspec
import numpy as np
import torch
from fsspec.implementations.local import LocalFileSystem

from isosweep.trainers.data.errors import DataError, first_line, require_root, root_fs

FOLDER = "celeba/img_align_celeba"
CROP = 178
SIZE = 64
SUFFIXES = (".jpg", ".jpeg")
EXPECTED = f"an aligned CelebA JPEG (178 x 218 pixels; at least {CROP} x {CROP})"
HOLDS = f"{FOLDER}/ with the aligned CelebA JPEGs (000001.jpg, ...)"


def _folder(root: str | None) -> tuple[str, str]:
    root = require_root(root, "celeba", HOLDS)
    _, base = root_fs(root)
    return root, f"{base}/{FOLDER}"


@functools.lru_cache(maxsize=2)
def list_images(root: str) -> tuple[str, ...]:
    """Every JPEG in the folder, sorted by name; DataError when the folder is missing or empty."""
    root, folder = _folder(root)
    fs, _ = root_fs(root)
    shown = f"{root.rstrip('/')}/{FOLDER}"
    try:
        if not fs.isdir(folder):
            raise DataError(
                f"{shown}: not found; data set 'celeba' needs the folder of aligned CelebA JPEGs there "
                f"(pass the folder that holds {FOLDER}/ with --data-root)"
            )
        names = fs.ls(folder, detail=False)
    except DataError:
        raise
    except Exception as exc:  # network, credentials, permissions
        raise DataError(f"{shown}: cannot be listed ({type(exc).__name__}: {first_line(exc)})") from None
    images = sorted(str(p) for p in names if str(p).lower().endswith(SUFFIXES))
    if not images:
        raise DataError(f"{shown}: holds no .jpg files; expected the aligned CelebA JPEGs (000001.jpg, ...)")
    return tuple(images)


def celeba_split(root: str, n_train: int, n_eval: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Training and held-out image paths: the last ``n_eval`` in name order are held out, the first
    ``n_train`` of the others are trained on. DataError when fewer than ``n_eval + 1`` exist."""
    images = list_images(root)
    if len(images) <= n_eval:
        raise DataError(
            f"{root.rstrip('/')}/{FOLDER}: holds {len(images)} JPEG(s); this budget holds out {n_eval} "
            f"and needs at least one more to train on"
        )
    rest = images[: len(images) - n_eval]
    return rest[:n_train], images[len(images) - n_eval :]


def centre_crop_box(width: int, height: int, crop: int = CROP) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred ``crop`` x ``crop`` square, rounded as torchvision."""
    left, top = int(round((width - crop) / 2.0)), int(round((height - crop) / 2.0))
    return left, top, left + crop, top + crop


def decode(data: bytes, path: str) -> np.ndarray:
    """One JPEG's bytes as (64, 64, 3) unsigned bytes: centre crop 178 x 178, then resize."""
    from PIL import Image, UnidentifiedImageError  # an optional dependency (extra ``images``)

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width < CROP or height < CROP:
                raise DataError(f"{path}: is {width} x {height} pixels; expected {EXPECTED}")
            if image.mode != "RGB":
                image = image.convert("RGB")
            image = image.crop(centre_crop_box(width, height))
            return np.array(image.resize((SIZE, SIZE), Image.Resampling.BILINEAR))
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot be decoded ({first_line(exc)}); expected {EXPECTED}") from None


class CelebAImages(torch.utils.data.Dataset):
    """Images read and decoded on demand (in DataLoader workers): item i is a (3, 64, 64) tensor of
    unsigned bytes."""

    def __init__(self, root: str, paths: tuple[str, ...]):
        self.root = root
        self.paths = paths
        self._fs: fsspec.AbstractFileSystem | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        if self._fs is None:  # opened in the worker that reads
            self._fs, _ = root_fs(self.root)
        path = self.paths[index]
        try:
            # A plain open on local disks: fsspec's file object costs as much as decoding a third of an image.
            opener = open if isinstance(self._fs, LocalFileSystem) else self._fs.open
            with opener(path, "rb") as f:
                data = f.read()
        except Exception as exc:
            raise DataError(f"{path}: cannot be read ({type(exc).__name__}: {first_line(exc)})") from None
        return torch.from_numpy(decode(data, path)).permute(2, 0, 1).contiguous()

    def stack(self, indices: range | list[int]) -> torch.Tensor:
        """Images as one (n, 3, 64, 64) float tensor in [0, 1], decoded here (held-out images)."""
        return torch.stack([self[i] for i in indices]).float() / 255.0


def check_celeba(root: str | None, n_eval: int) -> None:
    """Before training: the folder exists, holds more than ``n_eval`` JPEGs, and its first and last
    images decode to the expected size. DataError (one line) otherwise."""
    root, _ = _folder(root)
    images = list_images(root)
    celeba_split(root, len(images), n_eval)
    dataset = CelebAImages(root, (images[0], images[-1]))
    for i in range(len(dataset)):
        dataset[i]
