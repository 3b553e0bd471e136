"""Figures of the toy study, drawn from DuckDB relations of the named summary queries.

Every function takes relations (the rows of ``toy_dims``, ``toy_corr``, ``toy_rate_distortion``
or ``toy_points``, already restricted to what the figure shows) and returns a matplotlib Figure
drawn on the Agg canvas (no pyplot, no display); :func:`png_bytes` renders it.
References: Nakagawa, Kato, Suzuki (ICML 2021), figures 3, 10 and 13-24; docs/method.md sections 1, 4.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from isosweep.analysis.context import ordered
from isosweep.schema import ESTIMATES

DATASETS = ("norm", "ramp", "mix")
LOSSES = ("se", "dconv", "uconv")
RATIO_THEORY = (1.0, 4.0, 16.0)
"""sigma^-2 ratios of the toy sources (variances 1/6, 2/3, 8/3), from the smallest."""

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _color(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def _frame(rel: duckdb.DuckDBPyRelation | pd.DataFrame) -> pd.DataFrame:
    return rel if isinstance(rel, pd.DataFrame) else rel.df()


def _new_figure(width: float, height: float, rows: int = 1) -> Figure:
    """A figure on the Agg canvas with fixed margins in inches (a layout engine costs half the time)."""
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    top = 0.55 if rows == 1 else 0.6
    fig.subplots_adjust(
        left=0.75 / width, right=1 - 0.2 / width, bottom=0.6 / height, top=1 - top / height, wspace=0.28, hspace=0.42
    )
    return fig


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def _empty(ax: Axes, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#888")


def _wide(*columns: pd.Series, span: float = 5.0) -> bool:
    """True when the positive values span more than ``span`` times: worth a log axis (where the
    others, e.g. a theory of 0 with no active dimension, are left out)."""
    v = pd.concat([c.dropna() for c in columns]) if columns else pd.Series(dtype=float)
    v = v[v > 0]
    return bool(len(v)) and float(v.max()) > span * float(v.min())


def _positive_only(values: pd.Series) -> pd.Series:
    return values.where(values > 0)


# -- figures 13-21: one data set and loss against lambda ------------------------------------------


def lambda_panels(
    dims: duckdb.DuckDBPyRelation | pd.DataFrame, corr: duckdb.DuckDBPyRelation | pd.DataFrame, title: str
) -> Figure:
    """Three panels against lambda (log axis) for one data set and loss (paper figures 13-21).

    Left: mean norm ``(2/beta) sigma_j^2 D'_j`` of each dimension (by rank of mean sigma^-2), with a
    band of +-1 SD over the evaluation points; theory 1 in active dims (hollow marker: inactive).
    Middle: variance ratios (mean sigma^-2 over the smallest active one); theory 16 : 4 : 1.
    Right: Pearson correlation of the true p(x) with each of the five density estimates.
    ``dims`` has columns lam, rank, norm_mean, norm_sd, var_ratio, active_seeds; ``corr`` has
    lam and corr_<estimate>.
    """
    d, c = _frame(dims), _frame(corr)
    fig = _new_figure(15, 4.3)
    ax_norm, ax_ratio, ax_corr = fig.subplots(1, 3)
    fig.suptitle(title)
    ranks = sorted(int(r) for r in d["rank"].dropna().unique()) if not d.empty else []
    for i, rank in enumerate(ranks):
        rows = d[d["rank"] == rank].sort_values("lam")
        x, y, sd = rows["lam"].to_numpy(float), rows["norm_mean"].to_numpy(float), rows["norm_sd"].to_numpy(float)
        color = _color(i)
        # A band needs a few lambdas; at one or two, error bars (shifted apart a little) show the SD.
        xn = x if len(x) >= 3 else x * 10 ** ((i - (len(ranks) - 1) / 2) * 0.03)
        ax_norm.plot(xn, y, "o-", color=color, label=f"dim rank {rank}", ms=4)
        if len(x) >= 3:
            ax_norm.fill_between(x, y - sd, y + sd, color=color, alpha=0.15, lw=0)
        else:
            ax_norm.errorbar(xn, y, yerr=sd, fmt="none", ecolor=color, capsize=3, lw=1)
        inactive = (rows["active_seeds"] == 0).to_numpy()
        if inactive.any():
            ax_norm.plot(xn[inactive], y[inactive], "o", mfc="white", mec=color, ms=6)
        ratio = rows["var_ratio"].to_numpy(float)
        keep = ratio > 0
        ax_ratio.plot(x[keep], ratio[keep], "o-", color=color, label=f"dim rank {rank}", ms=4)
    ax_norm.axhline(1.0, ls="--", color="#555", lw=1, label="theory (active)")
    ax_norm.set(xscale="log", xlabel="lambda", ylabel="(2/beta) sigma^2 D'", title="norm per dimension")
    ax_norm.legend(fontsize=8)
    for level in RATIO_THEORY:
        ax_ratio.axhline(level, ls=":", color="#555", lw=1)
    ax_ratio.set(xscale="log", xlabel="lambda", ylabel="mean sigma^-2 / smallest active", title="variance ratios")
    if _wide(d.get("var_ratio", pd.Series(dtype=float)), pd.Series(RATIO_THEORY)):
        ax_ratio.set_yscale("log")
    if ranks:
        ax_ratio.legend(fontsize=8)
    else:
        _empty(ax_norm)
        _empty(ax_ratio)
    plotted = False
    for i, name in enumerate(ESTIMATES):
        column = f"corr_{name}"
        if column not in c.columns or c.empty or c[column].isna().all():
            continue
        rows = c.sort_values("lam")
        style = "o--" if name.endswith("_metric") else "o-"  # for se they coincide with elbo, post
        ax_corr.plot(rows["lam"], rows[column], style, color=_color(i), label=name, ms=4)
        plotted = True
    ax_corr.set(xscale="log", xlabel="lambda", ylabel="Pearson R with p(x)", title="density correlation")
    lams = pd.concat([d.get("lam", pd.Series(dtype=float)), c.get("lam", pd.Series(dtype=float))]).dropna()
    if 0 < lams.nunique() < 3:  # a decade either side, as matplotlib does for a single point
        for ax in (ax_norm, ax_ratio, ax_corr):
            ax.set_xlim(float(lams.min()) / 10, float(lams.max()) * 10)
    low = float(np.nanmin(c[[f"corr_{e}" for e in ESTIMATES]].to_numpy(float))) if plotted else 0.0
    ax_corr.set_ylim(min(0.0, low - 0.05), 1.02)
    if plotted:
        ax_corr.legend(fontsize=8)
    else:
        _empty(ax_corr)
    return fig


# -- figure 22: ratios at one lambda across data sets and losses ----------------------------------


def ratios_across(
    dims: duckdb.DuckDBPyRelation | pd.DataFrame,
    title: str,
    datasets: Sequence[str] = DATASETS,
    losses: Sequence[str] = LOSSES,
) -> Figure:
    """Variance ratios of every dimension at one lambda, grouped by data set and loss (figure 22).

    ``dims`` has columns dataset, loss, rank, var_ratio (one lambda); dotted lines: 1, 4, 16.
    """
    d = _frame(dims)
    fig = _new_figure(12, 4.5)
    ax = fig.subplots()
    ax.set_title(title)
    if d.empty:
        _empty(ax)
        return fig
    groups = [
        (ds, lo)
        for ds in ordered(d["dataset"], datasets)
        for lo in ordered(d["loss"], losses)
        if ((d["dataset"] == ds) & (d["loss"] == lo)).any()
    ]
    ranks = sorted(int(r) for r in d["rank"].unique())
    width = 0.8 / max(1, len(ranks))
    for i, rank in enumerate(ranks):
        heights = []
        for ds, lo in groups:
            match = d[(d["dataset"] == ds) & (d["loss"] == lo) & (d["rank"] == rank)]["var_ratio"]
            heights.append(float(match.iloc[0]) if len(match) and pd.notna(match.iloc[0]) else math.nan)
        xs = np.arange(len(groups)) + (i - (len(ranks) - 1) / 2) * width
        bars = ax.bar(xs, heights, width, color=_color(i), label=f"dim rank {rank}")
        ax.bar_label(bars, labels=[f"{h:.3g}" if math.isfinite(h) else "" for h in heights], fontsize=7, padding=1)
    for level in RATIO_THEORY:
        ax.axhline(level, ls=":", color="#555", lw=1)
    ax.set_xticks(np.arange(len(groups)), [f"{ds}\n{lo}" for ds, lo in groups])
    if _wide(d["var_ratio"], pd.Series(RATIO_THEORY)):
        ax.set_yscale("log")
    ax.set_ylabel("mean sigma^-2 / smallest active")
    ax.legend(fontsize=8)
    return fig


# -- figures 23, 24: rate-distortion against beta -------------------------------------------------


def _loss_panels(
    d: pd.DataFrame, title: str, losses: Sequence[str]
) -> tuple[Figure, list[tuple[Axes, str, pd.DataFrame]]]:
    """A figure of one panel per loss present in ``d`` (an empty panel where none is), and each
    panel's axes, loss and rows."""
    present = ordered(d["loss"], losses) if not d.empty else []
    fig = _new_figure(5 * max(1, len(present)), 4.3)
    fig.suptitle(title)
    axes = list(fig.subplots(1, max(1, len(present)), squeeze=False)[0])
    if not present:
        _empty(axes[0])
    return fig, [(ax, loss, d[d["loss"] == loss]) for ax, loss in zip(axes, present)]


def coding_loss_vs_beta(
    rd: duckdb.DuckDBPyRelation | pd.DataFrame,
    title: str,
    datasets: Sequence[str] = DATASETS,
    losses: Sequence[str] = LOSSES,
) -> Figure:
    """Coding loss ``D(x_breve, x_hat)`` against beta = 1/lambda, one panel per loss (figure 23).

    Solid: measured, one line per data set; dashed: the theory ``n_active * beta / 2``.
    ``rd`` has columns dataset, loss, beta, coding_loss, coding_theory.
    """
    fig, panels = _loss_panels(_frame(rd), title, losses)
    for ax, loss, part in panels:
        log = _wide(part["coding_loss"], part["coding_theory"])
        for i, ds in enumerate(ordered(part["dataset"], datasets)):
            rows = part[part["dataset"] == ds].sort_values("beta")
            theory = _positive_only(rows["coding_theory"]) if log else rows["coding_theory"]
            ax.plot(rows["beta"], rows["coding_loss"], "o-", color=_color(i), label=ds, ms=4)
            ax.plot(rows["beta"], theory, "x--", color=_color(i), lw=1, ms=6)
        ax.set(xscale="log", xlabel="beta = 1/lambda", ylabel="coding loss D(x_breve, x_hat)", title=f"loss {loss}")
        if log:
            ax.set_yscale("log")
        handles, _ = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], color="#555", ls="--", lw=1, marker="x", label="n_active beta/2 (dashed)"))
        ax.legend(handles=handles, fontsize=8)
    return fig


def transform_ratio_vs_beta(
    rd: duckdb.DuckDBPyRelation | pd.DataFrame,
    title: str,
    datasets: Sequence[str] = DATASETS,
    losses: Sequence[str] = LOSSES,
) -> Figure:
    """Transform loss over coding loss against beta, one panel per loss (figure 24).

    Dashed black where known: the squared-error theory ``21 beta / 16`` on the toy sources.
    ``rd`` has columns dataset, loss, beta, transform_coding_ratio, ratio_theory.
    """
    fig, panels = _loss_panels(_frame(rd), title, losses)
    for ax, loss, part in panels:
        log = _wide(part["transform_coding_ratio"], part["ratio_theory"])
        for i, ds in enumerate(ordered(part["dataset"], datasets)):
            rows = part[part["dataset"] == ds].sort_values("beta")
            ratio = _positive_only(rows["transform_coding_ratio"]) if log else rows["transform_coding_ratio"]
            ax.plot(rows["beta"], ratio, "o-", color=_color(i), label=ds, ms=4)
        theory = part.dropna(subset=["ratio_theory"]).drop_duplicates("beta").sort_values("beta")
        if not theory.empty:
            ax.plot(theory["beta"], theory["ratio_theory"], "x--", color="black", lw=1, ms=6, label="21 beta/16")
        ax.set(xscale="log", xlabel="beta = 1/lambda", ylabel="transform / coding loss", title=f"loss {loss}")
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    return fig


# -- figures 3, 10: p(x) against the estimates ----------------------------------------------------


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return math.nan
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def density_scatter(
    points: duckdb.DuckDBPyRelation | pd.DataFrame, title: str, losses: Sequence[str] = LOSSES
) -> Figure:
    """True density p(x) against each of the five estimates, one row per loss (figures 3, 10).

    Values are ``exp(log-value - max)`` per trial, so each axis runs up to 1; R is Pearson's
    correlation of the plotted (raw) values. ``points`` has columns loss, p_true and one column
    per estimate name.
    """
    d = _frame(points)
    rows = ordered(d["loss"], losses) if not d.empty else []
    fig = _new_figure(3.2 * len(ESTIMATES), 3.0 * max(1, len(rows)) + 0.5, rows=max(1, len(rows)))
    fig.suptitle(title)
    grid = fig.subplots(max(1, len(rows)), len(ESTIMATES), squeeze=False)
    if not rows:
        _empty(grid[0][0])
    for r, loss in enumerate(rows):
        part = d[d["loss"] == loss]
        truth = part["p_true"].to_numpy(float)
        for j, name in enumerate(ESTIMATES):
            ax = grid[r][j]
            estimate = part[name].to_numpy(float)
            ax.scatter(estimate, truth, s=4, alpha=0.35, color=_color(j), lw=0)
            ax.set_title(f"{loss}: {name}  R = {_pearson(estimate, truth):.3f}", fontsize=9)
            ax.set_xlim(-0.03, 1.03)
            ax.set_ylim(-0.03, 1.03)
            if r == len(rows) - 1:
                ax.set_xlabel("estimate (scaled)")
            if j == 0:
                ax.set_ylabel("p(x) (scaled)")
    return fig
