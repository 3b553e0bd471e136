"""Sections of the image studies' reports (``mnist``, ``celeba``; docs/method.md 5.2, the paper's figures
4, 5 and 28): a summary row per trial, then per trial the bar chart of mean sigma^-2 with the norm
per dimension and the latent traversal grid beside it (read from the store's artifacts)."""

from __future__ import annotations

from typing import Any

from isosweep.analysis import image_figures
from isosweep.analysis.context import ReportContext
from isosweep.analysis.document import Figure, Section, frame_table
from isosweep.analysis.figures import png_bytes
from isosweep.store import Store

SUMMARY_COLUMNS = (
    "latent_dim",
    "hidden",
    "form",
    "lam",
    "lam1",
    "lam2",
    "seed",
    "iterations",
    "n_active",
    "norm_active",
    "n_strong",
    "norm_strong",
    "sigma_inv2_max",
    "coding_loss",
    "coding_theory",
    "transform_loss",
    "wall_s",
    "trial_key",
)
TRAVERSAL = "traversal.png"


def _weights(row: Any) -> str:
    if row["form"] == "decomposed":
        return f"lambda1 {row['lam1']:g}, lambda2 {row['lam2']:g}"
    return f"lambda {row['lam']:g}"


def summary(ctx: ReportContext) -> Section | None:
    """Per trial: active dims, the mean norm of the active ones and of those with mean sigma^-2 > 10."""
    df = ctx.frame("image_summary")
    section = Section("Bottleneck summary")
    section.note(
        "Per trial: n_active = dims with mean KL > 0.1; norm_active = mean over them of the per-dim "
        "norm (2/beta) sigma^2 D' (theory 1); n_strong and norm_strong the same over the dims with mean "
        "sigma^-2 > 10, where the paper finds norms close to 1 (smaller sigma^-2 pull the norm below 1: "
        "a linear-Gaussian dimension's optimum is 1 - sigma^2); coding loss D(x_breve, x_hat) against "
        "the theory n_active beta / 2."
    )
    if df.empty:
        section.note(f"No ok trial of study {ctx.study.name} at budget {ctx.budget}.", warning=True)
        return section
    df = df.assign(hidden=df["hidden"].map(lambda h: "-".join(str(int(v)) for v in h) if h is not None else ""))
    section.add(
        frame_table(
            "image_summary", f"Study {ctx.study.name} at budget {ctx.budget}", df, SUMMARY_COLUMNS, "image_summary"
        )
    )
    return section


def per_trial_figures(ctx: ReportContext) -> Section | None:
    """Per trial: mean sigma^-2 sorted with the norm per dim, and the traversal grid (figures 4, 5, 28)."""
    dims = ctx.frame("image_dims")
    if dims.empty:
        return None
    section = Section("Per-dimension importance, norms and traversals (paper figures 4, 5, 28)")
    section.note(
        "Left: mean sigma^-2 of each latent dimension over the held-out images, sorted (bars, log axis; "
        "grey: inactive), with the norm (2/beta) sigma^2 D' of each (points: mean, bars: SD over the "
        "images; dashed: the theory's 1). Right: one held-out image's traversal, one row per dimension "
        "from the top rank down, z_j set from -2 to 2 with the other coordinates at mu."
    )
    store = Store(ctx.store_url)
    missing = []
    for key in dict.fromkeys(dims["trial_key"]):
        part = dims[dims["trial_key"] == key]
        row = part.iloc[0]
        what = f"n={int(row['latent_dim'])}, {_weights(row)}, {row['form']}, seed {int(row['seed'])}"
        traversal = store.read_artifact(key, TRAVERSAL)
        if traversal is None:
            missing.append(key)
        fig = image_figures.bottleneck_figure(part, f"{ctx.study.name}: {what} (budget {ctx.budget})", traversal)
        section.add(
            Figure(
                f"bottleneck_{key}",
                f"{ctx.study.name}, {what}: mean sigma^-2 and norm per dimension, "
                f"and the latent traversal (trial {key})",
                png_bytes(fig),
            )
        )
    if missing:
        section.note(
            f"No traversal grid in the store for trial(s) {', '.join(missing)} "
            f"(expected <store>/artifacts/<trial_key>/{TRAVERSAL}).",
            warning=True,
        )
    return section


IMAGE_SECTIONS = (summary, per_trial_figures)
