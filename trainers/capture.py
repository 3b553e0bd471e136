"""Replaying a bundle's epoch as one CUDA graph, and the optimiser both paths share.

A stacked bundle's step is hundreds of small kernels, each launched by the CPU: on a GPU the launch
work, not the arithmetic, sets the pace. ``EpochProgram`` runs an epoch's body (every optimiser
step of the epoch, over tensors that stay in place: the static buffers) either eagerly, or, with
``capture`` on a CUDA device, records it once as a CUDA graph and then replays the whole epoch
with one launch. The body is the same function either way, so the CPU tests cover its logic, and
capture is a switch that changes no result: the replayed kernels are the recorded ones, reading
and writing the same buffers.

What a body must respect for capture: every tensor it reads or writes lives across epochs (the
caller refills the inputs in place before each run: the epoch's batch order and noise), it draws
no random numbers on the device, keeps no Python state (the caller counts steps), and the optimiser
is ``stacked_adam(..., capturable=True)``, whose step count and learning rate are device tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

Tensor = torch.Tensor


def stacked_adam(params: Sequence[Tensor], lr: float, capturable: bool = False) -> torch.optim.Adam:
    """Adam over stacked parameters: exactly K independent Adams, since Adam is elementwise.

    The fused kernel where this torch has one for the device (one kernel for every tensor's update
    instead of several per tensor), else the multi-tensor one. ``capturable``: the step count and
    the learning rate live on the device, as a CUDA graph needs (the learning rate is then a
    tensor that ``set_learning_rate`` overwrites in place)."""
    params = list(params)
    if capturable:
        return torch.optim.Adam(params, lr=torch.tensor(lr, device=params[0].device), fused=True, capturable=True)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


def set_learning_rate(optimiser: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate: in place where it is a tensor (a captured graph reads that
    tensor), else as a number."""
    for group in optimiser.param_groups:
        if torch.is_tensor(group["lr"]):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


def can_capture(device: torch.device) -> bool:
    """Whether an epoch on ``device`` can be captured as a CUDA graph."""
    return device.type == "cuda"


class EpochProgram:
    """An epoch's body, run eagerly or replayed from a CUDA graph (see the module docstring).

    ``params`` and ``optimiser``: the state the body updates. Capture first runs the body once on a
    side stream (CUDA graphs need the optimiser's state to exist and the kernels' workspaces to be
    allocated before recording), then puts the parameters and the optimiser's state back as they
    were, so that the warm-up leaves no trace in the training."""

    def __init__(
        self, body: Callable[[], None], params: Sequence[Tensor], optimiser: torch.optim.Optimizer, capture: bool
    ):
        self.body = body
        self.params = list(params)
        self.optimiser = optimiser
        self.capture = capture
        self.graph: Any | None = None

    def run(self) -> None:
        """One epoch."""
        if not self.capture:
            self.body()
            return
        if self.graph is None:
            self._record()
        assert self.graph is not None
        self.graph.replay()

    def _record(self) -> None:
        saved_params = [p.detach().clone() for p in self.params]
        saved_state = {
            id(p): {k: v.clone() if torch.is_tensor(v) else v for k, v in self.optimiser.state[p].items()}
            for p in self.params
            if p in self.optimiser.state
        }
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.body()
        torch.cuda.current_stream().wait_stream(side)
        with torch.no_grad():
            for p, value in zip(self.params, saved_params):
                p.copy_(value)
            for p in self.params:
                before = saved_state.get(id(p))
                for k, v in self.optimiser.state[p].items():
                    if not torch.is_tensor(v):
                        continue
                    if before is not None and k in before:
                        v.copy_(before[k])
                    else:
                        v.zero_()  # Adam's fresh state: step 0, zero moments
        self.optimiser.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.body()
