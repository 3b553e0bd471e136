"""What every data set hands a trial: its arrays (``TrialData``), and the seeded NumPy generators
its draws come from (``data_rng``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
