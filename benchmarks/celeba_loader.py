"""Images per second of the CelebA loading pipeline (read, decode, centre crop 178, resize to 64)
with DataLoader workers, against the same pipeline in the training process (0 workers).

Runs on the real folder ``<data root>/celeba/img_align_celeba`` when given, else on generated
178 x 218 JPEGs in a temporary folder. Batches come from the image trial's own batch sampler
(``isosweep.trainers.image.batches``), so what is timed is exactly what a CelebA trial reads; the batches
stay on the CPU (no model), so the numbers are the loader's ceiling, to set against a GPU's
training speed in images per second.

    .venv/bin/python benchmarks/celeba_loader.py [--data-root DIR] [--workers 0,1,2,4,8] [--batches 60]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.image import LOADER_WORKERS_ENV, BatchOrder, batches, load_image_data

BATCH = 64


def images_per_second(root: str, workers: int, n_batches: int, n_images: int) -> float:
    """Images per second of ``n_batches`` batches of 64 (after two warm-up batches)."""
    os.environ[LOADER_WORKERS_ENV] = str(workers)
    cfg = TrialConfig(
        study="celeba",
        budget="bench",
        dataset="celeba",
        loss="ssim",
        seed=0,
        latent_dim=32,
        lam=1000.0,
        hidden=(1024,),
        iterations=n_batches + 2,
        n_train=n_images,
        n_eval=1,
        batch_size=BATCH,
        arch="conv_gdn",
    )
    data = load_image_data(cfg, root)
    order = BatchOrder(data.n_train, BATCH, seed=0)
    stream = batches(data, order, 0, n_batches + 2, torch.device("cpu"))
    for _ in range(2):  # workers started, first batches in flight
        next(stream)
    start = time.perf_counter()
    count = sum(x.shape[0] for x in stream)
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-root", default=None, help="folder holding celeba/img_align_celeba (default: generated JPEGs)"
    )
    parser.add_argument(
        "--workers", default="0,1,2", help="worker counts to time, comma-separated; the first is the baseline"
    )
    parser.add_argument("--batches", type=int, default=60, help="batches of 64 timed per worker count")
    parser.add_argument("--images", type=int, default=2000, help="generated images (without --data-root)")
    args = parser.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        if args.data_root:
            root, n_images = args.data_root, 10**9
        else:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from image_files import write_celeba

            root, n_images = str(write_celeba(Path(tmp), n=args.images)), args.images
            print(f"{args.images} generated 178 x 218 JPEGs in {tmp}")
        print(f"cores: {os.cpu_count()}; batches of {BATCH}, {args.batches} timed per setting")
        base = None
        for workers in counts:
            rate = images_per_second(root, workers, args.batches, n_images)
            base = base or rate
            print(f"workers {workers:>2}: {rate:8.0f} images/s  ({rate / base:.2f} x workers {counts[0]})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
