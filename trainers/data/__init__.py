"""Data sets of the studies: each trial gets its training and evaluation arrays from here."""

from __future__ import annotations

import os

from isosweep.paths import expand_home
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data.arrays import EVAL_STREAM, TRAIN_STREAM, TrialData, data_rng
from isosweep.trainers.data.custom import load_custom
from isosweep.trainers.data.toy import TOY_DATASETS, ToyData

__all__ = ["DATA_ROOT_ENV", "EVAL_STREAM", "TRAIN_STREAM", "TrialData", "data_rng", "data_root", "make_data"]

DATA_ROOT_ENV = "ISOSWEEP_DATA"


def data_root(explicit: str | None = None) -> str | None:
    """The folder or fsspec URL that holds real data sets: ``--data-root``, else $ISOSWEEP_DATA.

    A relative local folder is made absolute (and a leading ``~`` expanded) here, in the driver:
    the user meant it from where they typed it, and Ray's workers run in folders of their own."""
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
        return load_custom(cfg, root)
    raise ValueError(f"unknown data set {cfg.dataset!r}")
