"""Data sets of the studies: each trial gets its training and evaluation arrays from here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data.toy import TOY_DATASETS, ToyData

# Stream ids: the training draw, the evaluation draw, and the training loop (init, order, noise)
# each get their own seeded generator, so changing one never shifts another.
TRAIN_STREAM = 1
EVAL_STREAM = 2


def data_rng(seed: int, stream: int) -> np.random.Generator:
    """An independent NumPy generator for one trial seed and one stream."""
    return np.random.default_rng([seed, stream])


@dataclass(frozen=True)
class TrialData:
    """The arrays one trial trains and is measured on."""

    train: np.ndarray
    """(n_train, m) training inputs."""
    eval: np.ndarray
    """(n_eval, m) evaluation inputs."""
    eval_log_p: np.ndarray | None
    """Exact log-density of each evaluation input where it is known (toy data), else None."""

    @property
    def input_dim(self) -> int:
        return int(self.train.shape[1])


DATA_ROOT_ENV = "ISOSWEEP_DATA"


def data_root(explicit: str | None = None) -> str | None:
    """The folder or fsspec URL that holds real data sets: ``--data-root``, else $ISOSWEEP_DATA.

    A relative local folder is made absolute (and a leading ``~`` expanded) here, in the driver:
    the user meant it from where they typed it, and Ray's workers run in folders of their own."""
    import os

    from isosweep.paths import expand_home

    root = explicit or os.environ.get(DATA_ROOT_ENV) or None
    if root and "://" not in root:
        return os.path.abspath(expand_home(root, "--data-root" if explicit else DATA_ROOT_ENV))
    return root


def make_data(cfg: TrialConfig, root: str | None = None) -> TrialData:
    """Draw (or load, from ``root``) the data of one trial."""
    if cfg.dataset in TOY_DATASETS:
        toy = ToyData(cfg.dataset, cfg.data_seed)
        train = toy.sample(cfg.n_train, data_rng(cfg.seed, TRAIN_STREAM))
        evaluation = toy.sample(cfg.n_eval, data_rng(cfg.seed, EVAL_STREAM))
        return TrialData(train, evaluation, toy.log_density(evaluation))
    if cfg.dataset == "custom":
        from isosweep.trainers.data.custom import load_custom

        return load_custom(cfg, root)
    raise ValueError(f"unknown data set {cfg.dataset!r}")
