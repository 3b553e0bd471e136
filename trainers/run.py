"""Entry point of the trainers: train and measure one trial, with no knowledge of Ray or the store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from isosweep.trainers.allocator import keep_freed_memory
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.kinds import fusable, kind_of
from isosweep.trainers.provenance import now, provenance
from isosweep.trainers.records import TrialResult, TrialStatus
from isosweep.trainers.training import Checkpoint, ReportFn


def failed_result(cfg: TrialConfig, error: BaseException | str, started_at: datetime | None = None) -> TrialResult:
    """The record of a trial that raised: kept in the store so that nothing disappears silently."""
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return TrialResult(
        cfg, TrialStatus.FAILED, started_at or now(), now(), error=message[:2000], provenance=provenance()
    )


def run_bundle(
    cfgs: Sequence[TrialConfig],
    report: ReportFn | None = None,
    checkpoint: Checkpoint | None = None,
    data_root: str | None = None,
    where: str | None = None,
) -> list[TrialResult]:
    """Train fusable trials (``isosweep.trainers.kinds.fusable``) together, as their kind does, on
    device ``where`` (``"cuda"`` or ``"cpu"``; default the CPU); one result per trial, in order."""
    if not fusable(cfgs):
        raise ValueError("these trials cannot be fused; run them one by one with run_trial")
    keep_freed_memory()
    return kind_of(cfgs[0]).run(cfgs, report, checkpoint, data_root, where)


def run_trial(
    cfg: TrialConfig,
    report: ReportFn | None = None,
    checkpoint: Checkpoint | None = None,
    data_root: str | None = None,
    where: str | None = None,
) -> TrialResult:
    """Train one trial (resuming from ``checkpoint`` if given) and take its measurements, on device
    ``where`` (default: the CPU; an image trial's default is the GPU where there is one).

    The trial's kind (``isosweep.trainers.kinds``) says how it trains. Divergence (a NaN or
    infinite loss) is a result, not an error: it is returned with status ``diverged``. Any other
    exception propagates to the caller, which decides on retries.
    """
    keep_freed_memory()
    return kind_of(cfg).run([cfg], report, checkpoint, data_root, where)[0]
