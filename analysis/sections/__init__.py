"""The report's sections per study: adding a study's section is adding its function here.

A section function takes a :class:`isosweep.analysis.context.ReportContext` and returns a
:class:`isosweep.analysis.document.Section`, or None where it does not apply (its trials do not exist).
Every report starts with :func:`isosweep.analysis.sections.common.overview`.
"""

from __future__ import annotations

from isosweep.analysis.context import SectionFn
from isosweep.analysis.sections import anomaly, common, custom, images, toy

FIRST: tuple[SectionFn, ...] = (common.overview,)
"""Sections of every report, before the study's own."""

SECTIONS: dict[str, tuple[SectionFn, ...]] = {
    "toy": toy.TOY_SECTIONS,
    "toy-latent5": toy.LATENT5_SECTIONS,
    "custom": custom.CUSTOM_SECTIONS,
    "anomaly": anomaly.ANOMALY_SECTIONS,
    "anomaly-paper": anomaly.ANOMALY_SECTIONS,
    "mnist": images.IMAGE_SECTIONS,
    "celeba": images.IMAGE_SECTIONS,
}
"""The study's own sections, in report order."""


def sections_for(study: str) -> tuple[SectionFn, ...]:
    """Every section function of the report of ``study``."""
    return FIRST + SECTIONS.get(study, ())
