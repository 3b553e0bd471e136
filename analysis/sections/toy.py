"""Sections of the toy studies' report (docs/method.md 5.1; the paper's tables 1, 2, 4, figures 3, 10, 13-24).

Each function takes the report context and returns a Section (or None where it does not apply).
The numbers come from the named queries ``toy_dims``, ``toy_corr``, ``toy_rate_distortion`` and
``toy_points``, restricted to the report's study, budget and settings.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from isosweep.analysis import figures
from isosweep.analysis.context import ReportContext, SectionFn, ordered
from isosweep.analysis.document import Figure, Section, frame_table
from isosweep.schema import ESTIMATES
from isosweep.studies import STUDIES

REFERENCE_LAMBDA = 100.0
"""The paper's reference point for tables 1, 2, 4 and figures 3, 10, 22."""

DIM_COLUMNS = (
    "loss",
    "rank",
    "active_seeds",
    "seeds",
    "norm_mean",
    "norm_sd",
    "dprime_mean",
    "dprime_sd",
    "sigma_inv2_mean",
    "var_ratio",
    "kl_mean",
)


def _figure(name: str, caption: str, fig: Any) -> Figure:
    return Figure(name, caption, figures.png_bytes(fig))


def _pairs(ctx: ReportContext) -> list[tuple[str, str]]:
    return [(d, lo) for d in ctx.axis_values("dataset") for lo in ctx.axis_values("loss")]


def _note_missing_pairs(section: Section, ctx: ReportContext, df: pd.DataFrame, what: str) -> None:
    have = set(zip(df["dataset"], df["loss"])) if not df.empty else set()
    absent = [f"{d}/{lo}" for d, lo in _pairs(ctx) if (d, lo) not in have]
    if absent:
        section.note(f"No {what} for (data set/loss): {', '.join(absent)}.", warning=True)


def _lam(value: float) -> str:
    return f"{value:g}"


# -- tables 1, 2, 4 -------------------------------------------------------------------------------


def _per_dim(ctx: ReportContext, study: str, title: str, prefix: str) -> Section:
    section = Section(title)
    dims = ctx.frame("toy_dims", study=study, lam=REFERENCE_LAMBDA)
    section.note(
        "Per latent dimension, ordered by mean sigma^-2 (rank 1 = largest), averaged over seeds: "
        "norm = (2/beta) sigma^2 D' over the evaluation points (mean, SD; theory 1 in active dims, "
        "0 in inactive ones), D' (mean, SD), mean sigma^-2 and its ratio to the smallest active one "
        "(theory on the toy data: 16 : 4 : 1). active_seeds: seeds in which the dimension is active."
    )
    if dims.empty:
        section.note(
            f"No per-dimension rows of an ok trial of study {study} at lambda {_lam(REFERENCE_LAMBDA)} "
            f"and budget {ctx.budget}.",
            warning=True,
        )
        return section
    for dataset in ordered(dims["dataset"], ctx.axis_values("dataset")):
        part = dims[dims["dataset"] == dataset]
        section.add(
            frame_table(
                f"{prefix}{dataset}",
                f"Data set {dataset}, lambda {_lam(REFERENCE_LAMBDA)}",
                part,
                DIM_COLUMNS,
                "toy_dims",
            )
        )
    if study == ctx.recorded_as:
        _note_missing_pairs(section, ctx, dims, f"ok trial with per-dimension rows at lambda {_lam(REFERENCE_LAMBDA)}")
    return section


def _per_dim_tables(which: str) -> SectionFn:
    def section(ctx: ReportContext) -> Section:
        return _per_dim(
            ctx, ctx.recorded_as, f"Per-dimension measurements at lambda {_lam(REFERENCE_LAMBDA)} ({which})", "dims_"
        )

    section.__doc__ = f"Per-dimension norm, D', mean sigma^-2 and ratios at lambda 100 ({which})."
    return section


per_dim_tables = _per_dim_tables("paper tables 1, 2")
latent5_per_dim_tables = _per_dim_tables("paper table 4")


def companion_tables(ctx: ReportContext) -> Section | None:
    """The per-dimension tables of the study's companions (``Study.companions``: ``toy`` shows
    ``toy-latent5``, the paper's table 4) where the store holds their trials at this budget."""
    found = []
    for name in ctx.study.companions:
        if ctx.frame("toy_dims", study=name).empty:
            continue
        # Table names as `<companion less the study's prefix>_dims_<data set>`, e.g. latent5_dims_mix.
        prefix = name.removeprefix(f"{ctx.study.name}-")
        found.append(_per_dim(ctx, name, f"Study {name}: {STUDIES[name].description}", f"{prefix}_dims_"))
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    merged = Section("Companion studies")
    for part in found:
        merged.note(part.title)
        merged.blocks.extend(part.blocks)
    return merged


# -- density estimation ---------------------------------------------------------------------------


def density_table(ctx: ReportContext) -> Section:
    """Correlation of p(x) with the five estimates at lambda 100 (Pearson on raw values, Spearman)."""
    section = Section(f"Density estimation at lambda {_lam(REFERENCE_LAMBDA)}")
    corr = ctx.frame("toy_corr", lam=REFERENCE_LAMBDA)
    section.note(
        "corr_*: Pearson R between the true p(x) and exp(log-estimate) on raw values; rank_*: "
        "Spearman. The metric-aware estimates (elbo_metric, post_metric) include a_x^(n/2); "
        "for se they equal elbo and post."
    )
    if corr.empty:
        section.note(f"No ok trial at lambda {_lam(REFERENCE_LAMBDA)} and budget {ctx.budget}.", warning=True)
        return section
    columns = ("dataset", "loss", "seeds", *(f"corr_{e}" for e in ESTIMATES), *(f"rank_{e}" for e in ESTIMATES))
    section.add(
        frame_table(
            "density_lambda100", f"Density correlations at lambda {_lam(REFERENCE_LAMBDA)}", corr, columns, "toy_corr"
        )
    )
    return section


def density_scatter_figures(ctx: ReportContext) -> Section:
    """p(x) against the five estimates at lambda 100, one figure per data set (figures 3, 10)."""
    section = Section(f"p(x) against the estimates at lambda {_lam(REFERENCE_LAMBDA)} (paper figures 3, 10)")
    points = ctx.frame("toy_points", lam=REFERENCE_LAMBDA)
    if points.empty:
        section.note(f"No per-point values at lambda {_lam(REFERENCE_LAMBDA)} and budget {ctx.budget}.", warning=True)
        return section
    section.note(
        "One trial per data set and loss (its lowest ok seed); values are exp(log-value - max) of "
        "that trial, so both axes run up to 1."
    )
    for dataset in ordered(points["dataset"], ctx.axis_values("dataset")):
        part = points[points["dataset"] == dataset]
        fig = figures.density_scatter(
            part,
            f"Data set {dataset}, lambda {_lam(REFERENCE_LAMBDA)}: p(x) against the estimates",
            ctx.axis_values("loss"),
        )
        section.add(
            _figure(
                f"scatter_{dataset}",
                f"Data set {dataset}: true p(x) against each density "
                f"estimate, one row per loss, lambda {_lam(REFERENCE_LAMBDA)}",
                fig,
            )
        )
    return section


# -- figures 13-22 --------------------------------------------------------------------------------


def lambda_figures(ctx: ReportContext) -> Section:
    """Per data set and loss: norm, variance ratios and density correlations against lambda (13-21)."""
    section = Section("Against lambda (paper figures 13-21)")
    dims, corr = ctx.frame("toy_dims"), ctx.frame("toy_corr")
    section.note(
        "Left: norm per dimension (band: +-1 SD over the evaluation points; hollow: inactive); "
        "middle: variance ratios (dotted: 1, 4, 16); right: Pearson R of p(x) with each estimate."
    )
    for dataset, loss in _pairs(ctx):
        d = dims[(dims["dataset"] == dataset) & (dims["loss"] == loss)]
        c = corr[(corr["dataset"] == dataset) & (corr["loss"] == loss)]
        if d.empty and c.empty:
            continue
        fig = figures.lambda_panels(d, c, f"Data set {dataset}, loss {loss} (budget {ctx.budget})")
        section.add(
            _figure(
                f"lambda_{dataset}_{loss}",
                f"Data set {dataset}, loss {loss}: norm, variance ratios and density correlations against lambda",
                fig,
            )
        )
    _note_missing_pairs(section, ctx, dims, "ok trial with per-dimension rows at any lambda")
    return section


def ratio_figure(ctx: ReportContext) -> Section:
    """Variance ratios at lambda 100 across data sets and losses (figure 22)."""
    section = Section(f"Variance ratios at lambda {_lam(REFERENCE_LAMBDA)} (paper figure 22)")
    dims = ctx.frame("toy_dims", lam=REFERENCE_LAMBDA)
    if dims.empty:
        section.note(
            f"No per-dimension rows of an ok trial at lambda {_lam(REFERENCE_LAMBDA)} and budget {ctx.budget}.",
            warning=True,
        )
        return section
    fig = figures.ratios_across(
        dims,
        f"Mean sigma^-2 over the smallest active one, lambda {_lam(REFERENCE_LAMBDA)} (theory 16 : 4 : 1)",
        ctx.axis_values("dataset"),
        ctx.axis_values("loss"),
    )
    section.add(_figure("ratios_lambda100", "Variance ratios per dimension rank across data sets and losses", fig))
    return section


# -- figures 23, 24 -------------------------------------------------------------------------------


def rate_distortion_figures(ctx: ReportContext) -> Section:
    """Coding loss against beta with n beta / 2, and transform/coding against beta (figures 23, 24)."""
    section = Section("Rate-distortion (paper figures 23, 24)")
    rd = ctx.frame("toy_rate_distortion")
    if rd.empty:
        section.note(f"No ok trial at budget {ctx.budget}.", warning=True)
        return section
    datasets, losses = ctx.axis_values("dataset"), ctx.axis_values("loss")
    coding = figures.coding_loss_vs_beta(rd, "Coding loss against beta", datasets, losses)
    section.add(
        _figure(
            "coding_loss", "Coding loss D(x_breve, x_hat) against beta = 1/lambda; dashed: n_active beta / 2", coding
        )
    )
    section.add(
        _figure(
            "transform_coding_ratio",
            "Transform loss over coding loss against beta; dashed: 21 beta / 16 (squared error)",
            figures.transform_ratio_vs_beta(rd, "Transform / coding loss against beta", datasets, losses),
        )
    )
    at = rd[rd["lam"] == REFERENCE_LAMBDA]
    if not at.empty:
        columns = (
            "dataset",
            "loss",
            "seeds",
            "n_active",
            "coding_loss",
            "coding_theory",
            "transform_loss",
            "transform_coding_ratio",
            "ratio_theory",
        )
        section.add(
            frame_table(
                "rate_distortion_lambda100",
                f"Coding and transform losses at lambda {_lam(REFERENCE_LAMBDA)}",
                at,
                columns,
                "toy_rate_distortion",
            )
        )
    return section


TOY_SECTIONS = (
    per_dim_tables,
    density_table,
    lambda_figures,
    ratio_figure,
    rate_distortion_figures,
    density_scatter_figures,
    companion_tables,
)
LATENT5_SECTIONS = (latent5_per_dim_tables, density_table, density_scatter_figures)
