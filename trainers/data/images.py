"""The image data sets' names, and the check of their files before any trial starts (``isosweep
run`` calls it through the image trial kind of ``isosweep.trainers.kinds``): MNIST's four IDX
files are read and checked whole; the CelebA folder is listed, counted against the held-out
share, and its first and last JPEGs decoded. Raises DataError (one line) naming the file and what
was expected."""

from __future__ import annotations

from collections.abc import Sequence

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data.errors import require_root
from isosweep.trainers.data.mnist import HOLDS, load_mnist

IMAGE_DATASETS = ("mnist", "celeba")
"""The image data sets of docs/method.md 5.2, trained by ``isosweep.trainers.image``."""


def check_image_files(configs: Sequence[TrialConfig], root: str | None) -> None:
    if any(c.dataset == "mnist" for c in configs):
        load_mnist(require_root(root, "mnist", HOLDS))
    held_out = [c.n_eval for c in configs if c.dataset == "celeba"]
    if held_out:
        # Loaded here: the CelebA reader loads torch, which the trial-kind registry that imports
        # this module does without (``isosweep.trainers.kinds``).
        from isosweep.trainers.data.celeba import check_celeba

        check_celeba(root, max(held_out))
