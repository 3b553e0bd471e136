"""The section every report starts with: what the store holds, what is shown, what is missing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from isosweep.analysis.context import ReportContext
from isosweep.analysis.document import Section, frame_table


def _value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def missing_summary(missing: pd.DataFrame, axes: list[str], last_values: Sequence[Any]) -> str:
    """The missing points in a few words, grouped by all axes but the last: ``dataset mix, loss se:
    lam 1, 2``, or ``every lam`` where all of ``last_values`` (the last axis's planned values) miss."""
    if not axes:
        return f"{len(missing)} point(s)"
    *outer, last = axes
    every = set(last_values)
    groups = missing.groupby(outer, sort=False) if outer else [((), missing)]
    parts = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        head = ", ".join(f"{a} {_value(v)}" for a, v in zip(outer, key))
        values = list(part[last])
        tail = f"every {last}" if every and set(values) >= every else f"{last} " + ", ".join(_value(v) for v in values)
        parts.append(f"{head}: {tail}" if head else tail)
    return "; ".join(parts)


def overview(ctx: ReportContext) -> Section:
    """Trials per budget and status, the points of the grid with no ok trial, failed trials."""
    section = Section("Trials in the store")
    counts = ctx.frame("study_overview", budget=None, reduction=None, lr_schedule=None)
    section.add(
        frame_table(
            "trials",
            f"Trials of study {ctx.study.name} per budget, settings and status",
            counts,
            None,
            "study_overview",
        )
    )
    other = counts[(counts["budget"] != ctx.budget) & (counts["status"] == "ok")]["budget"].unique().tolist()
    if other:
        section.note(
            f"This report shows budget {ctx.budget}; the store also holds ok trials at budget "
            f"{', '.join(other)} (choose with --budget)."
        )
    shown = counts[(counts["budget"] == ctx.budget)]
    for column, value in ctx.settings.items():
        others = shown[(shown[column] != value) & (shown["status"] == "ok")]
        if not others.empty:
            section.note(
                f"{int(others['trials'].sum())} ok trial(s) with {column} other than {value} "
                f"({', '.join(sorted(others[column].unique()))}) are not in this report; "
                f"query them with `isosweep query` (the named queries keep these columns)."
            )

    planned = ctx.study.size(ctx.budget)
    missing = ctx.frame("missing_points")
    axes = [a.name for a in ctx.study.axes if a.name in missing.columns]
    if ctx.study.needs_user_data:
        section.note(
            f"The trials of study {ctx.study.name} depend on the data file and options each run was given; "
            f"`isosweep query @{ctx.study.summary}` lists the points the store holds."
        )
    elif missing.empty:
        section.note(f"All {planned} planned point(s) ({', '.join(axes)}) have an ok trial at budget {ctx.budget}.")
    else:
        listed = missing_summary(missing, axes, ctx.axis_values(axes[-1]) if axes else ())
        section.note(
            f"{len(missing)} of {planned} planned point(s) ({', '.join(axes)}) have no ok trial at "
            f"budget {ctx.budget}: {listed}. Run `isosweep run "
            f"{ctx.study.name} --budget {ctx.budget} --store {ctx.store_url}` to complete the sweep "
            "(completed trials are skipped).",
            warning=True,
        )
        columns = [*axes, "present", "statuses"]
        section.add(
            frame_table(
                "missing_points",
                f"Planned points with no ok trial at budget {ctx.budget}",
                missing,
                columns,
                "missing_points",
                fold_above=12,
            )
        )
    failed = ctx.frame("failed_trials")
    if not failed.empty:
        columns = [*axes, "seed", "status", "error"]
        section.note(
            f"{len(failed)} trial(s) failed or diverged at budget {ctx.budget}; a new run retries them.", warning=True
        )
        section.add(
            frame_table(
                "failed_trials",
                f"Failed or diverged trials at budget {ctx.budget}",
                failed,
                columns,
                "failed_trials",
                fold_above=12,
            )
        )
    return section
