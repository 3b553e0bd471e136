"""Figures of the image bottleneck studies (docs/method.md 5.2; the paper's figures 4, 5 and 28).

:func:`bottleneck_figure` draws one trial: the mean sigma^-2 of each latent dimension sorted from
the largest (bars, log axis) with the norm ``(2/beta) sigma_j^2 D'_j`` of each (mean and SD over the
held-out images, on a second axis; theory 1 in active dims), and its latent traversal grid beside
it. Drawn on the Agg canvas (no pyplot, no display).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from isosweep.analysis.figures import _empty, _new_figure, _wide

ACTIVE, INACTIVE, NORM = "#1f77b4", "#c7c7c7", "#d62728"


def bottleneck_figure(dims: pd.DataFrame, title: str, traversal: bytes | None) -> Figure:
    """``dims``: one trial's rows of ``image_dims`` (rank, active, sigma_inv2_mean, norm_mean,
    norm_sd); ``traversal``: the PNG of its traversal grid, or None (then a note in its place)."""
    d = dims.sort_values("rank")
    fig = _new_figure(15, 6.0)
    fig.subplots_adjust(left=0.9 / 15)
    grid = fig.add_gridspec(1, 2, width_ratios=(1.6, 1.0), wspace=0.22)
    ax = fig.add_subplot(grid[0, 0])
    right = fig.add_subplot(grid[0, 1])
    fig.suptitle(title)
    if d.empty:
        _empty(ax)
    else:
        x = np.arange(1, len(d) + 1)
        colors = [ACTIVE if a else INACTIVE for a in d["active"]]
        ax.bar(x, d["sigma_inv2_mean"].to_numpy(float), width=0.8, color=colors)
        if _wide(d["sigma_inv2_mean"]):  # a log axis where the values span decades (trained models)
            ax.set_yscale("log")
        ax.set(
            xlabel="latent dimension, by rank of mean sigma^-2",
            ylabel="mean sigma^-2 (bars; grey: inactive)",
            xlim=(0.3, len(d) + 0.7),
        )
        norm = ax.twinx()
        norm.errorbar(
            x,
            d["norm_mean"].to_numpy(float),
            yerr=d["norm_sd"].to_numpy(float),
            fmt="o",
            ms=3,
            color=NORM,
            ecolor=NORM,
            elinewidth=0.8,
            capsize=1.5,
        )
        norm.axhline(1.0, ls="--", color="#555", lw=1)
        top = float(np.nanmax((d["norm_mean"] + d["norm_sd"]).to_numpy(float))) if len(d) else 1.0
        norm.set_ylim(0.0, max(1.5, top * 1.05))
        norm.set_ylabel("(2/beta) sigma^2 D': mean +- SD (points; dashed: theory 1)", color=NORM)
    right.set_axis_off()
    if traversal is None:
        _empty(right, "no traversal grid in the store")
    else:
        from PIL import Image

        picture = np.asarray(Image.open(io.BytesIO(traversal)).convert("RGB"))
        right.imshow(picture, interpolation="nearest")
        right.set_title("traversal: rows = dims by rank, z_j from -2 to 2 (left: the input)", fontsize=9)
    return fig
