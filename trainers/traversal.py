"""Latent traversal grids of the image studies (docs/method.md 5.2; the paper's figures 4, 5 and 28).

One held-out image is encoded to mu; each row takes one latent dimension j, in the order of the
dimensions' mean sigma^-2 (rank 1, the most important, at the top), and decodes mu with z_j set to
each of ``VALUES`` (from -2 to 2), the other coordinates left at mu. The first column shows the
input image, set apart by a wider gap. At most ``MAX_ROWS`` dimensions are shown **(choice)**.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch

from isosweep.trainers.objective import VAE

VALUES = tuple(float(v) for v in np.linspace(-2.0, 2.0, 9))
MAX_ROWS = 16
GAP = 2
"""Pixels between tiles (white); three times as many after the input column."""
MIN_SIDE = 56
"""Tiles are drawn at least this large (MNIST's 28 pixels doubled), so that a viewer sees the digits."""


def traversal_tiles(
    model: VAE,
    x: torch.Tensor,
    dims: Sequence[int],
    image_shape: tuple[int, int, int],
    values: Sequence[float] = VALUES,
) -> np.ndarray:
    """Decoded images (rows, len(values), H, W, C) as floats clipped to [0, 1]: row r sets z at
    ``dims[r]`` to each value, from mu of ``x`` (one input, batch of 1)."""
    with torch.no_grad():
        mu, _ = model.encode(x)
        z = mu.repeat(len(dims) * len(values), 1)
        grid = torch.tensor(values, dtype=z.dtype, device=z.device)
        for r, j in enumerate(dims):
            z[r * len(values) : (r + 1) * len(values), j] = grid
        decoded = model.decode(z).reshape(len(dims), len(values), *image_shape)
    return decoded.clamp(0.0, 1.0).permute(0, 1, 3, 4, 2).cpu().numpy()


def grid_image(tiles: np.ndarray, original: np.ndarray) -> np.ndarray:
    """The tiles (rows, cols, H, W, C) and the input (H, W, C) as one uint8 picture on white;
    tiles smaller than ``MIN_SIDE`` are enlarged by a whole factor (nearest pixel)."""
    factor = max(1, MIN_SIDE // tiles.shape[2])
    if factor > 1:
        tiles = tiles.repeat(factor, axis=2).repeat(factor, axis=3)
        original = original.repeat(factor, axis=0).repeat(factor, axis=1)
    rows, cols, h, w, c = tiles.shape
    left = w + 3 * GAP
    canvas = np.ones((rows * h + (rows - 1) * GAP, left + cols * w + (cols - 1) * GAP, c))
    for r in range(rows):
        top = r * (h + GAP)
        canvas[top : top + h, :w] = original
        for k in range(cols):
            x0 = left + k * (w + GAP)
            canvas[top : top + h, x0 : x0 + w] = tiles[r, k]
    return np.round(canvas * 255.0).astype(np.uint8)


def png_bytes(picture: np.ndarray) -> bytes:
    """A (H, W, C) uint8 picture as PNG (greyscale for one channel)."""
    from PIL import Image  # an optional dependency (extra ``images``): loaded when used

    image = Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def traversal_png(model: VAE, x: torch.Tensor, ranked_dims: Sequence[int], image_shape: tuple[int, int, int]) -> bytes:
    """The traversal grid of input ``x`` (batch of 1) as PNG, rows = ``ranked_dims[:MAX_ROWS]``."""
    dims = list(ranked_dims)[:MAX_ROWS]
    tiles = traversal_tiles(model, x, dims, image_shape)
    original = x.reshape(image_shape).clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy()
    return png_bytes(grid_image(tiles, original))
