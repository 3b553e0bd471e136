"""The image trials of docs/method.md 5.2: MNIST and CelebA, trained for a number of iterations.

One trial: load its images (``isosweep.trainers.data.mnist``, ``isosweep.trainers.data.celeba``), train the
network of ``cfg.arch`` (``isosweep.trainers.image_models``) with Adam on the conventional or decomposed
objective (``isosweep.trainers.objective``), then take the measurements of docs/method.md section 4 on the
held-out images (``isosweep.trainers.measure``; no density estimates, the true p(x) being unknown) and
draw the latent traversal grid (``isosweep.trainers.traversal``), returned as the trial's artifact
``traversal.png``.

Model and batches live on the device the trial is given (``isosweep.trainers.device``: the GPU
its Ray trial holds, else the CPU; called directly, the GPU when ``torch.cuda.is_available()``).
CelebA images are decoded in DataLoader workers; MNIST sits in memory (on the device) whole.

Every random draw is the trial's own: the initialisation from its seed, the batch order of
iteration k from (seed, epoch of k) alone (so a loader that reads ahead, or a resumed run, takes
the same batches), the reparameterisation noise from a generator whose state is checkpointed.
Progress is reported about every 10 % of the iterations (``progress`` = ``iteration`` = iterations
done) with a checkpoint from which a run continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data.celeba import HOLDS as CELEBA_HOLDS
from isosweep.trainers.data.celeba import CelebAImages, celeba_split
from isosweep.trainers.data.errors import require_root
from isosweep.trainers.data.images import IMAGE_DATASETS
from isosweep.trainers.data.mnist import HOLDS as MNIST_HOLDS
from isosweep.trainers.data.mnist import mnist_split
from isosweep.trainers.device import DeviceLike, resolve, to_cpu
from isosweep.trainers.image_models import IMAGE_SHAPE, build_image_model
from isosweep.trainers.measure import measure
from isosweep.trainers.metrics import get_metric
from isosweep.trainers.objective import objective_terms
from isosweep.trainers.provenance import now
from isosweep.trainers.records import TrialResult, TrialStatus
from isosweep.trainers.training import (
    CURVE_TERMS,
    Checkpoint,
    ReportFn,
    TrainOutcome,
    TrialDiverged,
    loop_seed,
    step_learning_rate,
)
from isosweep.trainers.traversal import traversal_png

ORDER_STREAM = 9
MNIST_SHAPE = (1, 28, 28)
MEASURE_CHUNK = {"conv_gdn": 64, "mlp_sigmoid": 1000}
"""Held-out images measured at a time: each chunk is decoded 2n + 2 times in float64."""
CURVE_POINTS = 100
"""About this many curve rows per trial (means over the iterations since the last row)."""
REPORTS = 10
LOADER_WORKERS_ENV = "ISOSWEEP_LOADER_WORKERS"
MAX_LOADER_WORKERS = 8

Tensor = torch.Tensor


def default_device() -> torch.device:
    """Where an image trial trains and is measured when no device is given: the GPU if there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


device = default_device
"""The former name of ``default_device``."""


def loader_workers() -> int:
    """DataLoader workers that decode CelebA: ``$ISOSWEEP_LOADER_WORKERS``, else one per thread the
    trial was given (``--cpus-per-trial`` sets torch's threads), at most 8."""
    if os.environ.get(LOADER_WORKERS_ENV):
        return max(0, int(os.environ[LOADER_WORKERS_ENV]))
    return max(1, min(MAX_LOADER_WORKERS, torch.get_num_threads()))


# -- data -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageData:
    """One trial's images: the training set (a tensor, or a dataset decoded in workers) and the
    held-out images as floats in [0, 1]."""

    train: Any
    """(n, 784) float tensor (MNIST) or a ``CelebAImages`` dataset of uint8 (3, 64, 64) items."""
    eval: np.ndarray
    """(n_eval, ...) float32 held-out images, in the model's input shape."""
    shape: tuple[int, int, int]
    """(C, H, W) of one image."""

    @property
    def n_train(self) -> int:
        return len(self.train)

    @property
    def input_dim(self) -> int:
        return int(np.prod(self.eval.shape[1:]))


def load_image_data(cfg: TrialConfig, root: str | None) -> ImageData:
    """The images of ``cfg.dataset`` from the data root (DataError, one line, when unreadable)."""
    if cfg.dataset == "mnist":
        train, evaluation = mnist_split(require_root(root, "mnist", MNIST_HOLDS), cfg.n_train, cfg.n_eval)
        return ImageData(torch.from_numpy(train), evaluation, MNIST_SHAPE)
    if cfg.dataset == "celeba":
        root = require_root(root, "celeba", CELEBA_HOLDS)
        train_paths, eval_paths = celeba_split(root, cfg.n_train, cfg.n_eval)
        held_out = CelebAImages(root, eval_paths)
        return ImageData(CelebAImages(root, train_paths), held_out.stack(range(len(held_out))).numpy(), IMAGE_SHAPE)
    raise ValueError(f"unknown image data set {cfg.dataset!r}; known: {', '.join(IMAGE_DATASETS)}")


class BatchOrder:
    """The training images of iteration k: epoch ``e = k // per_epoch`` is a permutation drawn
    from (seed, e) alone, cut into ``per_epoch`` batches (the remainder of n / batch is left out
    of that epoch). A pure function of k, so that any iteration can be the first."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.size = min(batch_size, n)
        self.per_epoch = n // self.size
        self.n, self.seed = n, seed
        self._epoch, self._perm = -1, np.empty(0, dtype=np.int64)

    def __call__(self, k: int) -> np.ndarray:
        epoch, slot = divmod(k, self.per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.random.default_rng([self.seed, ORDER_STREAM, epoch]).permutation(self.n)
        return self._perm[slot * self.size : (slot + 1) * self.size]


class IterationBatches(torch.utils.data.Sampler):
    """Batch sampler of iterations ``start`` to ``stop - 1`` (a DataLoader's ``batch_sampler``)."""

    def __init__(self, order: BatchOrder, start: int, stop: int):
        self.order, self.start, self.stop = order, start, stop

    def __iter__(self) -> Iterator[list[int]]:
        for k in range(self.start, self.stop):
            yield self.order(k).tolist()

    def __len__(self) -> int:
        return self.stop - self.start


def batches(data: ImageData, order: BatchOrder, start: int, stop: int, where: torch.device) -> Iterator[Tensor]:
    """The float batches of iterations ``start`` to ``stop - 1`` on ``where``."""
    if isinstance(data.train, Tensor):
        train = data.train.to(where)
        for k in range(start, stop):
            yield train[torch.from_numpy(order(k)).to(where)]
        return
    workers = loader_workers()
    cuda = where.type == "cuda"
    loader = torch.utils.data.DataLoader(
        data.train,
        batch_sampler=IterationBatches(order, start, stop),
        num_workers=workers,
        pin_memory=cuda,
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )
    for images in loader:
        # uint8 across the bus, a quarter of the bytes of floats; scaled to [0, 1] on the device.
        yield images.to(where, non_blocking=cuda).float().div_(255.0)


# -- training -------------------------------------------------------------------------------------


def log_points(iterations: int) -> tuple[set[int], set[int]]:
    """Iteration counts after which a curve row is written and after which progress is reported
    (every report point is a curve point, so a checkpoint never holds half a curve window)."""
    report_every = max(1, math.ceil(iterations / REPORTS))
    reports = set(range(report_every, iterations + 1, report_every)) | {iterations}
    curve_every = max(1, iterations // CURVE_POINTS)
    return set(range(curve_every, iterations + 1, curve_every)) | reports, reports


def train_images(
    cfg: TrialConfig,
    data: ImageData,
    report: ReportFn | None = None,
    checkpoint: Checkpoint | None = None,
    where: DeviceLike = None,
) -> TrainOutcome:
    """Train one image trial for ``cfg.iterations``; resume from ``checkpoint`` when given.
    Raises TrialDiverged when the loss becomes NaN or infinite."""
    where = resolve(where) if where is not None else default_device()
    iterations = int(cfg.iterations or 0)
    if iterations < 1:
        raise ValueError("an image trial needs iterations >= 1")
    metric = get_metric(cfg.loss)
    transform = get_metric(cfg.transform_metric) if cfg.transform_metric else None
    model = build_image_model(cfg, data.input_dim).to(where)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(loop_seed(cfg.seed))
    curves: list[dict[str, float]] = []
    start = 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimiser.load_state_dict(checkpoint["optimiser"])
        gen.set_state(checkpoint["generator"])
        curves = list(checkpoint["curves"])
        start = int(checkpoint["iteration"])

    order = BatchOrder(data.n_train, cfg.batch_size, cfg.seed)
    curve_at, report_at = log_points(iterations)
    sums = torch.zeros(len(CURVE_TERMS), dtype=torch.float64, device=where)
    window = 0
    model.train()
    for k, x in enumerate(batches(data, order, start, iterations, where), start=start):
        for group in optimiser.param_groups:
            group["lr"] = step_learning_rate(cfg, k, iterations)
        eps = torch.randn(x.shape[0], cfg.latent_dim, generator=gen).to(where)
        terms = objective_terms(model, x, eps, cfg, metric, transform)
        loss = terms["loss"].mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            sums += torch.stack([terms[t].detach().mean() for t in CURVE_TERMS]).to(torch.float64)
        window += 1
        done = k + 1
        if done not in curve_at:
            continue
        means = (sums / window).tolist()
        sums.zero_()
        window = 0
        curves.append({"step": done, "epoch": done * order.size // data.n_train, **dict(zip(CURVE_TERMS, means))})
        if not all(math.isfinite(v) for v in means):
            raise TrialDiverged(f"loss became {means[0]} by iteration {done}")
        if report is not None and done in report_at:

            def make_checkpoint(done: int = done) -> Checkpoint:
                return {
                    "iteration": done,
                    "model": to_cpu(model.state_dict()),
                    "optimiser": to_cpu(optimiser.state_dict()),
                    "generator": gen.get_state(),
                    "curves": list(curves),
                }

            # Counted in iterations: no ``epoch`` here, since these trials never count epochs.
            report(
                {
                    "progress": done,
                    "iteration": done,
                    "step": done,
                    "samples": done * cfg.batch_size,
                    **dict(zip(CURVE_TERMS, means)),
                },
                make_checkpoint,
            )
    return TrainOutcome(model.eval(), curves, iterations)


# -- the trial ------------------------------------------------------------------------------------


def run_image_trial(
    cfg: TrialConfig,
    report: ReportFn | None,
    checkpoint: Checkpoint | None,
    data_root: str | None,
    provenance: dict[str, Any],
    where: DeviceLike = None,
) -> TrialResult:
    """Train, measure and draw the traversal grid of one image trial on device ``where`` (default:
    ``default_device``)."""
    started = now()
    where = resolve(where) if where is not None else default_device()
    data = load_image_data(cfg, data_root)
    try:
        outcome = train_images(cfg, data, report, checkpoint, where)
    except TrialDiverged as exc:
        return TrialResult(cfg, TrialStatus.DIVERGED, started, now(), error=str(exc), provenance=provenance)
    metric = get_metric(cfg.loss)
    chunk = MEASURE_CHUNK.get(cfg.arch or "", 256)
    found = measure(outcome.model, cfg, data.eval, None, metric, chunk=chunk, device=where)
    ranked = sorted(range(cfg.latent_dim), key=lambda j: found.dims[j]["rank"])
    x_one = torch.as_tensor(data.eval[:1], device=where)
    grid = traversal_png(outcome.model, x_one, ranked, data.shape)
    scalars = {
        "loss_final": outcome.loss_final,
        "steps": outcome.steps,
        "n_fit": data.n_train,
        "n_test": int(data.eval.shape[0]),
        **found.scalars,
    }
    return TrialResult(
        cfg,
        TrialStatus.OK,
        started,
        now(),
        scalars=scalars,
        dims=found.dims,
        curves=outcome.curves,
        provenance=provenance,
        artifacts={"traversal.png": grid},
    )
