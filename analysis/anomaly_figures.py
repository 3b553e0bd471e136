"""Figures of the anomaly-detection study (docs/method.md 5.3), drawn from the rows of the named queries
``anomaly_grid`` and ``anomaly_search``, on the Agg canvas like every figure of the report."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from isosweep.analysis.figures import _empty, _new_figure


def _cell_text(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def f1_heatmap(
    grid: pd.DataFrame,
    title: str,
    paper_point: tuple[float, float] | None = None,
    best_point: tuple[float, float] | None = None,
    searched: pd.DataFrame | None = None,
) -> Figure:
    """Mean test F1 over seeds on the (lambda1, lambda2) grid of one data set, each cell labelled
    with its value; the paper's point framed in black, the grid point with the best mean validation
    F1 marked with a star. A second panel shows the mean validation F1 (what selection sees). Where
    a search's points are given, a third panel places them on log axes, coloured by validation F1,
    with the grid's extent drawn as a rectangle."""
    panels = 3 if searched is not None and not searched.empty else 2
    fig = _new_figure(6.25 * panels, 4.8)
    fig.subplots_adjust(left=0.07 * 2 / panels, right=0.96, wspace=0.42)
    axes = fig.subplots(1, panels)
    if grid.empty:
        for ax in axes:
            _empty(ax)
        fig.suptitle(title)
        return fig
    lam1 = sorted(grid["lam1"].unique())
    lam2 = sorted(grid["lam2"].unique())
    for ax, column, label in (
        (axes[0], "f1", "test F1 (mean over seeds)"),
        (axes[1], "val_f1", "validation F1 (mean over seeds)"),
    ):
        values = np.full((len(lam2), len(lam1)), np.nan)
        for row in grid.itertuples(index=False):
            values[lam2.index(row.lam2), lam1.index(row.lam1)] = getattr(row, column)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        image = ax.imshow(values, origin="lower", cmap="viridis", vmin=low, vmax=max(high, low + 1e-6), aspect="auto")
        for i in range(len(lam2)):
            for j in range(len(lam1)):
                text = _cell_text(values[i, j])
                if text:
                    bright = np.isfinite(values[i, j]) and values[i, j] > (low + high) / 2
                    ax.text(j, i, text, ha="center", va="center", fontsize=8, color="black" if bright else "white")
        ax.set_xticks(range(len(lam1)), [f"{v:g}" for v in lam1], fontsize=8)
        ax.set_yticks(range(len(lam2)), [f"{v:g}" for v in lam2], fontsize=8)
        ax.set_xlabel("lambda1 (transform loss weight)")
        ax.set_ylabel("lambda2 (coding loss weight, 1/beta)")
        ax.set_title(label, fontsize=10)
        bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, format="%.3f")
        bar.ax.tick_params(labelsize=8)
        if paper_point is not None and paper_point[0] in lam1 and paper_point[1] in lam2:
            j, i = lam1.index(paper_point[0]), lam2.index(paper_point[1])
            ax.add_patch(_frame_patch(j, i))
        if best_point is not None and best_point[0] in lam1 and best_point[1] in lam2:
            j, i = lam1.index(best_point[0]), lam2.index(best_point[1])
            ax.plot([j + 0.33], [i + 0.3], marker="*", markersize=11, color="#d62728", markeredgecolor="white")
    if panels == 3:
        assert searched is not None
        _search_panel(fig, axes[2], searched, lam1, lam2)
    fig.suptitle(title + "  (black frame: paper's point; red star: best validation F1 on the grid)", fontsize=10)
    return fig


def _search_panel(fig: Figure, ax, searched: pd.DataFrame, lam1: Sequence[float], lam2: Sequence[float]) -> None:
    """A search's points on log axes, coloured by mean validation F1; the grid's extent as a
    dashed rectangle, the search's choice (val_rank 1) as a diamond."""
    from matplotlib.patches import Rectangle

    image = ax.scatter(
        searched["lam1"],
        searched["lam2"],
        c=searched["val_f1"],
        cmap="viridis",
        s=36,
        edgecolors="black",
        linewidths=0.5,
    )
    chosen = searched[searched["val_rank"] == 1]
    ax.scatter(
        chosen["lam1"],
        chosen["lam2"],
        s=120,
        marker="D",
        facecolors="none",
        edgecolors="#d62728",
        linewidths=1.6,
        label="search's choice (best validation F1)",
    )
    ax.add_patch(
        Rectangle(
            (min(lam1), min(lam2)),
            max(lam1) - min(lam1),
            max(lam2) - min(lam2),
            fill=False,
            linestyle="--",
            edgecolor="#555",
            label="the grid's extent",
        )
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("lambda1")
    ax.set_ylabel("lambda2")
    ax.set_title(f"search points ({len(searched)}), validation F1", fontsize=10)
    ax.legend(loc="lower left", fontsize=7, framealpha=0.8)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, format="%.3f")
    bar.ax.tick_params(labelsize=8)


def _frame_patch(j: int, i: int):
    from matplotlib.patches import Rectangle

    return Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2.2)
