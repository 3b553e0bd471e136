"""The kinds of trial, registered in one place: which configs each owns, how one of its trials
trains, whether its trials fuse, and how its data files are checked before a sweep starts.

- ``mlp``: the MLP VAE of the toy studies (docs/method.md 5.1) and of a user's data file (``custom``),
  trained by epochs; trials with one fusion key train as one vectorised bundle
  (``isosweep.trainers.fused``).
- ``anomaly``: the anomaly-detection trial of docs/method.md 5.3, with its own snapshot loop
  (``isosweep.trainers.anomaly``); reads its data set from the data root. Trials with one fusion
  key (one data set's grid points and seeds) train as one stacked bundle, each with its own split
  and snapshots.
- ``image``: the MNIST and CelebA trials of docs/method.md 5.2, trained by iterations
  (``isosweep.trainers.image``); read their images from the data root.

Every runner trains on the device it is given (``where``: ``"cuda"`` when the Ray trial holds a
GPU, else ``"cpu"``; ``isosweep.trainers.device``).

The registry imports no torch: planning and the data checks use it without loading the trainers,
whose modules load when a trial of their kind runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data.anomaly import ANOMALY_DATASETS, check_files
from isosweep.trainers.data.images import IMAGE_DATASETS, check_image_files
from isosweep.trainers.records import TrialResult
from isosweep.trainers.training import Checkpoint, ReportFn

Runner = Callable[
    [Sequence[TrialConfig], ReportFn | None, Checkpoint | None, str | None, str | None], list[TrialResult]
]
"""Train and measure a bundle (one trial, or several that are ``fusable``): (configs, report,
checkpoint to resume from, data root, device) -> one result per config, in order."""

DataCheck = Callable[[Sequence[TrialConfig], str | None], None]
"""Check the files the given trials read under the data root; DataError (one line) names the file."""


@dataclass(frozen=True)
class TrialKind:
    """One kind of trial (see the module docstring)."""

    name: str
    """``mlp``, ``anomaly`` or ``image``."""
    datasets: tuple[str, ...] | None
    """The data sets whose trials are of this kind; None: every data set that no other kind names."""
    run: Runner
    """How a bundle of this kind (one trial where it does not fuse) trains and is measured (no Ray,
    no store)."""
    fuses: bool
    """Whether trials of this kind with one fusion key (``TrialConfig.fusion_key``) train as one
    vectorised bundle; the others train one at a time."""
    check: DataCheck | None = None
    """The check of its data files before anything starts; None for a kind that reads no data
    root or whose file is checked where it is given (``custom``: ``isosweep.orchestrator.userdata``)."""


# The runners import their trainer when called: the trainers load torch, and the registry stays
# light without it (module docstring). None of those modules imports this one: no import cycle.
def _run_mlp(
    cfgs: Sequence[TrialConfig],
    report: ReportFn | None,
    checkpoint: Checkpoint | None,
    data_root: str | None,
    where: str | None,
) -> list[TrialResult]:
    from isosweep.trainers.mlp import run_mlp_bundle

    return run_mlp_bundle(cfgs, report, checkpoint, data_root, where=where)


def _run_anomaly(
    cfgs: Sequence[TrialConfig],
    report: ReportFn | None,
    checkpoint: Checkpoint | None,
    data_root: str | None,
    where: str | None,
) -> list[TrialResult]:
    from isosweep.trainers.anomaly import run_anomaly_bundle
    from isosweep.trainers.provenance import provenance

    return run_anomaly_bundle(cfgs, report, checkpoint, data_root, provenance(where), where)


def _run_image(
    cfgs: Sequence[TrialConfig],
    report: ReportFn | None,
    checkpoint: Checkpoint | None,
    data_root: str | None,
    where: str | None,
) -> list[TrialResult]:
    from isosweep.trainers.image import default_device, run_image_trial
    from isosweep.trainers.provenance import provenance

    (cfg,) = cfgs
    device = where or default_device()
    return [run_image_trial(cfg, report, checkpoint, data_root, provenance(device), device)]


def _check_anomaly_files(configs: Sequence[TrialConfig], root: str | None) -> None:
    check_files([c.dataset for c in configs], root)


KINDS: dict[str, TrialKind] = {
    k.name: k
    for k in (
        TrialKind("mlp", None, _run_mlp, fuses=True),
        TrialKind("anomaly", tuple(ANOMALY_DATASETS), _run_anomaly, fuses=True, check=_check_anomaly_files),
        TrialKind("image", IMAGE_DATASETS, _run_image, fuses=False, check=check_image_files),
    )
}

_BY_DATASET = {name: k for k in KINDS.values() if k.datasets is not None for name in k.datasets}


def kind_of(cfg: TrialConfig) -> TrialKind:
    """The kind of a trial, told by its data set."""
    return _BY_DATASET.get(cfg.dataset, KINDS["mlp"])


def fusable(cfgs: Sequence[TrialConfig]) -> bool:
    """Whether these trials can train as one vectorised bundle (``isosweep.trainers.fused``): all
    of one kind that fuses, with one fusion key."""
    return (
        len(cfgs) > 0
        and len({kind_of(c).name for c in cfgs}) == 1
        and kind_of(cfgs[0]).fuses
        and len({c.fusion_key() for c in cfgs}) == 1
    )


def check_data(configs: Sequence[TrialConfig], root: str | None) -> None:
    """Run each kind's data check on its trials among ``configs``, before anything is planned or
    started. Raises ``isosweep.trainers.data.errors.DataError`` (one line naming the file)."""
    for kind in KINDS.values():
        mine = [c for c in configs if kind_of(c) is kind]
        if kind.check is not None and mine:
            kind.check(mine, root)
