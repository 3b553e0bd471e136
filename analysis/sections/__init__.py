"""The report's section sets: a study names its set in the registry (``Study.report``).

A section function takes a :class:`isosweep.analysis.context.ReportContext` and returns a
:class:`isosweep.analysis.document.Section`, or None where it does not apply (its trials do not
exist). Every report starts with :func:`isosweep.analysis.sections.common.overview`.
"""

from __future__ import annotations

from isosweep.analysis.context import SectionFn
from isosweep.analysis.sections import anomaly, common, custom, images, toy
from isosweep.studies import Study

FIRST: tuple[SectionFn, ...] = (common.overview,)
"""Sections of every report, before the study's own."""

SECTION_SETS: dict[str, tuple[SectionFn, ...]] = {
    "toy": toy.TOY_SECTIONS,
    "toy-latent5": toy.LATENT5_SECTIONS,
    "custom": custom.CUSTOM_SECTIONS,
    "anomaly": anomaly.ANOMALY_SECTIONS,
    "images": images.IMAGE_SECTIONS,
}
"""Each set's own sections, in report order; a new study reuses one or adds its own here."""


def sections_for(study: Study) -> tuple[SectionFn, ...]:
    """Every section function of the report of ``study``."""
    if study.report is not None and study.report not in SECTION_SETS:
        raise KeyError(
            f"study {study.name!r} names report section set {study.report!r}; known: {', '.join(SECTION_SETS)}"
        )
    return FIRST + (SECTION_SETS[study.report] if study.report is not None else ())
