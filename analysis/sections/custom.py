"""Section of the report of study ``custom`` (a user's own data): the named query ``custom_summary``
per data file, restricted to the report's budget."""

from __future__ import annotations

from isosweep.analysis.context import ReportContext
from isosweep.analysis.document import Section, frame_table


def summary(ctx: ReportContext) -> Section | None:
    """Per data file, loss and lambda: active dims, their norms and sigma^-2 ratios, the density
    correlations (docs/method.md section 4), averaged over seeds."""
    df = ctx.frame("custom_summary")
    if df.empty:
        return None
    section = Section("Isometry and density estimation on your data")
    section.note(
        "Per data file (data_hash: SHA-256 of its bytes), loss and lambda, averaged over ok seeds: the number "
        "of active dims, their mean norm (theory 1), their sigma^-2 ratios from the smallest to the largest "
        "(theory: the variances of the data's principal directions) and, where the file has a density "
        "column, the best estimate of p(x) and the metric-aware ones (Pearson R on raw values)."
    )
    df = df.assign(data_hash=df["data_hash"].str.slice(0, 16))
    section.add(frame_table("custom_summary", f"Study custom at budget {ctx.budget}", df, None, "custom_summary"))
    return section


CUSTOM_SECTIONS = (summary,)
