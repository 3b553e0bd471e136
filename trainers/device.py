"""Where a trial trains, for every kind of trial: the device, its name, and checkpoints that load
on any device.

A bundle trains on the device its Ray trial holds: CUDA when the trial was given a GPU (the
driver asks Ray, ``isosweep.orchestrator.trainable.trial_device``), else the CPU. Parameters, Adam state, data,
noise and the float64 measurements all live there. What stays the same whatever the device:

- **Random draws.** Every draw of a trial (batch order, reparameterisation noise, the fixed
  validation noise, the measurements' noise) comes from a ``torch.Generator`` on the CPU seeded
  from the trial's seed (``isosweep.trainers.training.loop_seed``), and is then moved to the
  device (``draw_on_cpu``). CPU generators give the same numbers on every machine, so a trial
  draws the same batches and noise on a GPU as on a CPU; device generators (Philox on CUDA) would
  give other numbers. Results on two devices then differ only by floating-point rounding.
- **The trial key.** It never holds the device (``isosweep.trainers.config``); the ``device``
  column of the trial's row records where it trained (``device_name``).
- **Checkpoints.** Every tensor of a checkpoint is copied to the CPU (``to_cpu``), so that a retry
  resumes on another node or another device: parameters are copied into the live tensors and the
  optimiser's state is cast to its parameters' device by ``Optimizer.load_state_dict``.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

DeviceLike = str | torch.device | None


def resolve(where: DeviceLike = None) -> torch.device:
    """The device to train on: ``where`` as given (``"cuda"`` means the current CUDA device);
    None: the CPU (a caller outside Ray that wants a GPU names it)."""
    if where is None:
        return torch.device("cpu")
    found = torch.device(where)
    if found.type == "cuda" and found.index is None:
        found = torch.device("cuda", torch.cuda.current_device())
    return found


def device_name(where: DeviceLike) -> str:
    """What the store's ``device`` column records: the GPU's name (``torch.cuda.get_device_name``)
    for a CUDA device, else ``cpu``."""
    found = resolve(where)
    if found.type == "cuda":
        return torch.cuda.get_device_name(found)
    return found.type


def draw_on_cpu(tensor: torch.Tensor, where: torch.device) -> torch.Tensor:
    """A draw made on a CPU generator, moved to ``where`` (see the module docstring: the draws of a
    seed are the same on every device)."""
    return tensor if where.type == "cpu" else tensor.to(where, non_blocking=True)


def to_cpu(value: Any) -> Any:
    """A (nested) state with every tensor copied to the CPU, so that a checkpoint taken on a GPU
    can be restored anywhere; everything else is deep-copied (the live state goes on changing)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_cpu(v) for v in value]
    if isinstance(value, tuple):
        return tuple(to_cpu(v) for v in value)
    return copy.deepcopy(value)


def synchronize(where: torch.device | None) -> None:
    """Wait for the device's queued work (timing on a GPU; a no-op on the CPU)."""
    if where is not None and where.type == "cuda":
        torch.cuda.synchronize(where)
