"""What a trial's record says of when and where it ran: the clock of its ``started_at`` and
``finished_at`` (``now``), and the versions, device and host it ran with (``provenance``)."""

from __future__ import annotations

import socket
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

import torch

from isosweep.trainers.device import DeviceLike, device_name


def now() -> datetime:
    """The current time, in UTC: a trial's ``started_at`` and ``finished_at``."""
    return datetime.now(timezone.utc)


def provenance(where: DeviceLike = None) -> dict[str, Any]:
    """Where and with what a trial ran: ``device`` is the device it trained on (``where``, default
    the CPU), the GPU's name for a CUDA device."""
    try:
        version = metadata.version("isosweep")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "isosweep_version": version,
        "torch_version": torch.__version__,
        "device": device_name(where),
        "hostname": socket.gethostname(),
    }
