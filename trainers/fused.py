"""Fused training: K trials that share an architecture and budget train as one vectorised model.

Every parameter of the K member MLP VAEs is stacked on a leading member axis, each layer is one
batched matmul (``baddbmm``) over the members, the members' mean losses are summed, and one Adam
runs over the stacked tensors. Adam is elementwise, so this is exactly K independent Adams, and
member k's gradient is the gradient of its own loss alone: fusing changes the speed, never the
result (``tests/trainers/test_fused.py`` checks that against one-by-one training). The stacked
model, its objective and the freezing of a member are ``isosweep.trainers.stacked``.

Members may differ in data set, loss, reduction, lambda and seed. Each keeps its own data,
initialisation (the unfused model's, from its seed) and random stream (batch order and noise drawn
from its own generator, once per epoch). A member whose epoch loss is NaN or infinite is frozen
(its parameters, optimiser state, data and loss weight set to zero, so it computes zeros from then
on) and recorded as diverged; the others go on.

Everything lives on the device the bundle is given (``isosweep.trainers.device``); the members'
random draws come from CPU generators and are moved there, so a bundle draws the same on any device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from isosweep.trainers.capture import EpochProgram, can_capture, set_learning_rate, stacked_adam
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.data import TrialData
from isosweep.trainers.device import DeviceLike, resolve, to_cpu
from isosweep.trainers.models import MLPVAE, build_model
from isosweep.trainers.stacked import MemberLosses, StackedVAE, freeze_member
from isosweep.trainers.training import (
    CURVE_TERMS,
    Checkpoint,
    ReportFn,
    TrainOutcome,
    TrialDiverged,
    loop_seed,
    report_epochs,
    step_learning_rate,
)


@dataclass
class MemberOutcome:
    """One member's training: its curve, steps, and its model unless it diverged (then ``None``,
    with the reason in ``diverged``). A ``TrainOutcome`` but for the model it may lack."""

    model: MLPVAE | None
    curves: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    diverged: str | None = None

    @property
    def loss_final(self) -> float:
        return self.curves[-1]["loss"] if self.curves else float("nan")


def check_bundle(cfgs: Sequence[TrialConfig]) -> None:
    """Fused members must share one fusion key (``TrialConfig.fusion_key``): architecture and
    training schedule."""
    if len({c.fusion_key() for c in cfgs}) != 1:
        raise ValueError("fused trials must share architecture, budget, form, lr and lr schedule")


def train_bundle(
    cfgs: Sequence[TrialConfig],
    datas: Sequence[TrialData],
    report: ReportFn | None = None,
    checkpoint: Checkpoint | None = None,
    dtype: torch.dtype = torch.float32,
    where: DeviceLike = None,
    capture: bool = False,
) -> list[MemberOutcome]:
    """Train the members of a bundle together on device ``where`` (default the CPU); resume from
    ``checkpoint`` when given (taken on any device: ``isosweep.trainers.device``).

    The members' rows stay on the device for the whole training; each epoch gathers them in the
    epoch's order into a buffer that stays in place, and its steps read their batches from it, so
    no batch travels from the host. ``capture`` (on a CUDA device): each epoch is replayed as one
    CUDA graph (``isosweep.trainers.capture``); the results are the same."""
    check_bundle(cfgs)
    device = resolve(where)
    capture = capture and can_capture(device)
    ref = cfgs[0]
    k_members, n, latent = len(cfgs), datas[0].train.shape[0], ref.latent_dim
    templates = [
        build_model(d.input_dim, c.hidden, c.latent_dim, c.activation, c.seed, c.output_activation)
        for c, d in zip(cfgs, datas)
    ]
    model = StackedVAE.from_models(templates, ref.activation, dtype, device)
    params = model.parameters()
    optimiser = stacked_adam(params, ref.lr, capturable=capture)
    losses = MemberLosses(cfgs, dtype, device)
    # The generators stay on the CPU whatever the device: the draws of a seed are the same everywhere.
    gens = [torch.Generator().manual_seed(loop_seed(c.seed)) for c in cfgs]
    x_all = torch.stack([torch.as_tensor(d.train, dtype=dtype) for d in datas]).to(device)
    m = x_all.shape[2]
    outcomes = [MemberOutcome(None) for _ in cfgs]
    weight = torch.ones(k_members, dtype=dtype, device=device)
    start_epoch, steps = 0, 0
    if checkpoint is not None:
        with torch.no_grad():
            for p, saved in zip(params, checkpoint["params"]):
                p.copy_(saved)
        lrs = [group["lr"] for group in optimiser.param_groups]
        optimiser.load_state_dict(checkpoint["optimiser"])
        for group, lr in zip(optimiser.param_groups, lrs):
            group["lr"] = lr  # this optimiser's own (a device tensor when captured); set each epoch
        for g, state in zip(gens, checkpoint["generators"]):
            g.set_state(state)
        for o, curve, why in zip(outcomes, checkpoint["curves"], checkpoint["diverged"]):
            o.curves, o.diverged = list(curve), why
        start_epoch, steps = int(checkpoint["epoch"]), int(checkpoint["steps"])
        weight.copy_(checkpoint["weight"])
        x_all[weight == 0] = 0.0

    # The epoch's inputs and outputs, in place for the whole training (what a captured epoch reads).
    order = torch.empty(k_members, n, dtype=torch.long, device=device)
    noise = torch.empty(k_members, n, latent, dtype=dtype, device=device)
    x_epoch = torch.empty_like(x_all)
    sums = torch.zeros(len(CURVE_TERMS), k_members, dtype=torch.float64, device=device)
    starts = range(0, n, ref.batch_size)

    def epoch_body() -> None:
        torch.gather(x_all, 1, order.unsqueeze(-1).expand(-1, -1, m), out=x_epoch)
        sums.zero_()
        for start in starts:
            x = x_epoch[:, start : start + ref.batch_size]
            eps = noise[:, start : start + ref.batch_size]
            terms = losses.terms(model, x, eps)
            loss = (terms["loss"].mean(dim=1) * weight).sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                sums.add_(torch.stack([terms[t].detach().sum(dim=1) for t in CURVE_TERMS]).to(torch.float64))

    program = EpochProgram(epoch_body, params, optimiser, capture)
    reports = report_epochs(ref.epochs)
    for epoch in range(start_epoch, ref.epochs):
        set_learning_rate(optimiser, step_learning_rate(ref, epoch, ref.epochs))
        # One permutation and one block of noise per member and epoch, from the member's generator:
        # the draws are the same whether the member trains alone or in a bundle, on any device.
        order.copy_(torch.stack([torch.randperm(n, generator=g) for g in gens]))
        noise.copy_(torch.stack([torch.randn(n, latent, generator=g, dtype=dtype) for g in gens]))
        program.run()
        steps += len(starts)
        # The one read-back of the epoch (on a GPU, the wait for its queued steps).
        means = (sums / n).T.tolist()
        for k, (o, row) in enumerate(zip(outcomes, means)):
            if o.diverged is not None:
                continue
            o.curves.append({"step": steps, "epoch": epoch + 1, **dict(zip(CURVE_TERMS, row))})
            if not all(math.isfinite(v) for v in row):
                o.diverged = f"loss became {row[0]} in epoch {epoch + 1}"
                freeze_member(k, params, optimiser, weight)
                with torch.no_grad():
                    x_all[k] = 0.0
        if all(o.diverged is not None for o in outcomes):
            break
        if report is not None and (epoch + 1) in reports:
            alive = [row for o, row in zip(outcomes, means) if o.diverged is None]
            # samples: member-samples trained so far (every member passes over its n rows each epoch).
            metrics = {
                "progress": epoch + 1,
                "epoch": epoch + 1,
                "step": steps,
                "samples": (epoch + 1) * int(x_all.shape[0]) * int(x_all.shape[1]),
                **{t: float(np.mean([r[i] for r in alive])) for i, t in enumerate(CURVE_TERMS)},
            }

            def make_checkpoint(done_epoch: int = epoch + 1, steps_now: int = steps) -> Checkpoint:
                return {
                    "epoch": done_epoch,
                    "steps": steps_now,
                    "params": to_cpu(params),
                    "optimiser": to_cpu(optimiser.state_dict()),
                    "generators": [g.get_state() for g in gens],
                    "curves": [list(o.curves) for o in outcomes],
                    "diverged": [o.diverged for o in outcomes],
                    "weight": to_cpu(weight),
                }

            report(metrics, make_checkpoint)
    for k, o in enumerate(outcomes):
        # Steps taken while the member trained (a diverged member stopped at its last curve row).
        o.steps = int(o.curves[-1]["step"]) if o.curves else 0
        if o.diverged is None:
            o.model = model.member(k, templates[k])
    return outcomes


def train_model(
    cfg: TrialConfig,
    data: TrialData,
    report: ReportFn | None = None,
    checkpoint: Checkpoint | None = None,
    dtype: torch.dtype = torch.float32,
    where: DeviceLike = None,
) -> TrainOutcome:
    """Train one trial's model, as a bundle of one (so that a trial trained alone and the same trial
    trained in a bundle get the same draws); resume from ``checkpoint`` when given. Raises
    TrialDiverged."""
    (outcome,) = train_bundle([cfg], [data], report, checkpoint, dtype, where)
    if outcome.diverged is not None or outcome.model is None:
        raise TrialDiverged(outcome.diverged or "diverged")
    return TrainOutcome(outcome.model, outcome.curves, outcome.steps)
