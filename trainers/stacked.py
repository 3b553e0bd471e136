"""Stacked models: K MLP VAEs of one architecture as one model whose parameters carry a leading
member axis (``StackedVAE``), their per-member objective (``MemberLosses``), and the freezing of a
member that diverged (``freeze_member``). The fused MLP bundles (``isosweep.trainers.fused``) and
the anomaly bundles (``isosweep.trainers.anomaly``) train them.

Each layer is one batched matmul (``baddbmm``) over the members; one Adam over the stacked tensors
is exactly K independent Adams (``isosweep.trainers.capture.stacked_adam``), so member k's result
is that of its model trained alone.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.device import DeviceLike, resolve
from isosweep.trainers.metrics import Metric, get_metric
from isosweep.trainers.models import ACTIVATIONS, MLPVAE, output_activation
from isosweep.trainers.objective import form_weights, vae_terms

Tensor = torch.Tensor


def _linears(module: nn.Sequential) -> list[nn.Linear]:
    return [m for m in module if isinstance(m, nn.Linear)]


LEAKY_SLOPE = 0.01
"""``nn.LeakyReLU``'s default negative slope, the one ``isosweep.trainers.models`` uses."""

_IN_PLACE: dict[str, Callable[[Tensor], Tensor]] = {
    "leaky_relu": lambda h: torch.nn.functional.leaky_relu_(h, LEAKY_SLOPE),
    "relu": torch.relu_,
    "tanh": torch.tanh_,
}


def _activation_backward_(grad: Tensor, out: Tensor, activation: str) -> Tensor:
    """The gradient through ``activation``, from the activation's output ``out``, written over
    ``grad`` (a buffer the caller owns): a (leaky) ReLU's output has its input's sign, and
    tanh' = 1 - tanh^2. In place: a fresh output is one more buffer of the activations' size to
    write and to keep in cache. Measured on this project's 2-core CPU (one thread, 13 stacked
    Thyroid members, 100 epochs): the leaky ReLU's backward took 826 ms out of place and 237 ms in
    place, and the whole training 7.5 s and 6.0 s."""
    if activation == "leaky_relu":
        return torch.ops.aten.leaky_relu_backward.grad_input(grad, out, LEAKY_SLOPE, True, grad_input=grad)
    if activation == "relu":
        return torch.ops.aten.threshold_backward.grad_input(grad, out, 0.0, grad_input=grad)
    if activation == "tanh":
        return torch.ops.aten.tanh_backward.grad_input(grad, out, grad_input=grad)
    raise ValueError(f"no stacked backward for activation {activation!r}")


class _FeatureMajorChain(torch.autograd.Function):
    """A chain of layers ``h <- act(W h + b)`` (no activation after the last) for K members at
    once, with activations kept feature-major: (K, features, batch). Every matmul then has the
    batch as its long side (the layers here are 6 to 274 wide, the batches up to 1,024 rows),
    which CPU kernels run several times faster than batch-major products whose output is only a
    few columns wide.

    One autograd node for the whole chain rather than two per layer: the activations are applied
    in place, and the backward pass keeps only each layer's input, from which it reads the
    activation's derivative too (it is the previous activation's output). A stacked Thyroid step
    spends about half its time in these matmuls; the rest is per-operation work, which this cuts
    (``benchmarks/anomaly_fusion.py --unit-sweep``)."""

    @staticmethod
    def forward(ctx: Any, h: Tensor, activation: str, *params: Tensor) -> Tensor:  # (K, i, B), then W0, b0, W1, b1, ...
        weights, biases = params[0::2], params[1::2]
        inputs = []
        for i, (w, b) in enumerate(zip(weights, biases)):
            inputs.append(h)
            h = torch.baddbmm(b, w, h)
            if i < len(weights) - 1:
                _IN_PLACE[activation](h)
        ctx.activation = activation
        ctx.save_for_backward(*inputs, *weights)
        return h

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        saved = ctx.saved_tensors
        n = len(saved) // 2
        inputs, weights = saved[:n], saved[n:]
        grads: list[Tensor | None] = [None] * (2 * n)
        grad_input: Tensor | None = None
        for i in reversed(range(n)):
            grads[2 * i] = torch.bmm(grad, inputs[i].transpose(1, 2))
            grads[2 * i + 1] = grad.sum(dim=2, keepdim=True)
            if i > 0:
                grad = _activation_backward_(torch.bmm(weights[i].transpose(1, 2), grad), inputs[i], ctx.activation)
            elif ctx.needs_input_grad[0]:
                grad_input = torch.bmm(weights[0].transpose(1, 2), grad)
        return (grad_input, None, *grads)


class StackedVAE:
    """K MLP VAEs of one architecture with their parameters stacked on a member axis.

    Batch-major (the default): layer weights are stored as (K, in, out) so that
    ``baddbmm(b, x, W)`` maps (K, B, in) to (K, B, out); the mu and log-variance heads share one
    matmul. Feature-major (``feature_major``, the anomaly bundles'): weights (K, out, in), biases
    (K, out, 1), and the hidden activations (K, features, B) (``_FeatureMajorChain``); ``encode``
    and ``decode`` still take and return (K, B, features) (views). The two layouts compute the
    same products; only the order of floating-point additions differs.
    """

    def __init__(
        self,
        weights: list[Tensor],
        biases: list[Tensor],
        n_body: int,
        activation: str,
        latent_dim: int,
        feature_major: bool = False,
        output_activation: str | None = None,
    ):
        self.output_activation = output_activation
        self.weights = weights
        self.biases = biases
        self.n_body = n_body
        self.act = ACTIVATIONS[activation]()
        self.activation = activation
        self.latent_dim = latent_dim
        self.feature_major = feature_major

    @classmethod
    def from_models(
        cls,
        models: Sequence[MLPVAE],
        activation: str,
        dtype: torch.dtype,
        where: DeviceLike = None,
        feature_major: bool = False,
    ) -> StackedVAE:
        def stack(per_model: Iterable[Tensor]) -> Tensor:
            """One tensor of the models' (one per model, in order) on a leading member axis."""
            stacked = torch.stack([t.detach().to(dtype) for t in per_model]).contiguous()
            return stacked.to(resolve(where)).requires_grad_(True)

        def weight(w: Tensor) -> Tensor:
            return w if feature_major else w.T

        def bias(b: Tensor) -> Tensor:
            return b.unsqueeze(1) if feature_major else b.unsqueeze(0)

        first = models[0]
        body, decoder = _linears(first.body), _linears(first.decoder)
        weights, biases = [], []
        for i in range(len(body)):
            weights.append(stack(weight(_linears(m.body)[i].weight) for m in models))
            biases.append(stack(bias(_linears(m.body)[i].bias) for m in models))
        weights.append(stack(weight(torch.cat([m.mu.weight, m.logvar.weight])) for m in models))
        biases.append(stack(bias(torch.cat([m.mu.bias, m.logvar.bias])) for m in models))
        for i in range(len(decoder)):
            weights.append(stack(weight(_linears(m.decoder)[i].weight) for m in models))
            biases.append(stack(bias(_linears(m.decoder)[i].bias) for m in models))
        return cls(weights, biases, len(body), activation, first.latent_dim, feature_major, first.output_activation)

    def parameters(self) -> list[Tensor]:
        return [*self.weights, *self.biases]

    def _chain(self, h: Tensor, start: int, stop: int) -> Tensor:
        """Layers ``start:stop``, an activation after each but the last: batch-major (K, B, in)
        -> (K, B, out), or feature-major (K, in, B) -> (K, out, B) as one ``_FeatureMajorChain``."""
        weights, biases = self.weights[start:stop], self.biases[start:stop]
        if self.feature_major:
            params = [t for pair in zip(weights, biases) for t in pair]
            return _FeatureMajorChain.apply(h, self.activation, *params)
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = torch.baddbmm(b, h, w)
            if i < len(weights) - 1:
                h = self.act(h)
        return h

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # The body's layers and the heads' one matmul: an activation after each layer but the heads.
        if self.feature_major:
            heads = self._chain(x.transpose(1, 2), 0, self.n_body + 1)
            return heads[:, : self.latent_dim].transpose(1, 2), heads[:, self.latent_dim :].transpose(1, 2)
        heads = self._chain(x, 0, self.n_body + 1)
        return heads[..., : self.latent_dim], heads[..., self.latent_dim :]

    def decode(self, z: Tensor) -> Tensor:
        if self.feature_major:
            out = self._chain(z.transpose(1, 2), self.n_body + 1, len(self.weights)).transpose(1, 2)
        else:
            out = self._chain(z, self.n_body + 1, len(self.weights))
        return output_activation(out, self.output_activation)

    def decode_pair(self, mu: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(decode(mu), decode(z))`` in one pass over the decoder, the two batches side by side:
        half the operations, each twice as long (the decomposed form decodes both, docs/method.md
        section 2). Column j of a product depends only on column j of its input, so this computes
        the same values; only the order of the additions in the weight gradients differs."""
        if not self.feature_major:
            return self.decode(mu), self.decode(z)
        batch = mu.shape[1]
        both = output_activation(
            self._chain(torch.cat([mu.transpose(1, 2), z.transpose(1, 2)], dim=2), self.n_body + 1, len(self.weights)),
            self.output_activation,
        )
        return both[:, :, :batch].transpose(1, 2), both[:, :, batch:].transpose(1, 2)

    def member(self, k: int, template: MLPVAE) -> MLPVAE:
        """Member k as an ordinary MLPVAE (a copy of ``template`` with k's parameters), on the
        bundle's device."""
        model = copy.deepcopy(template).to(device=self.weights[0].device, dtype=self.weights[0].dtype)
        return self.load_member(k, model)

    def load_member(self, k: int, model: MLPVAE) -> MLPVAE:
        """Copy member k's parameters into ``model`` (an MLPVAE of this architecture, on the
        bundle's device and dtype), in eval mode: cheaper than ``member`` where one model is
        refreshed again and again (the anomaly trials' snapshots)."""
        body, decoder = _linears(model.body), _linears(model.decoder)

        def weight(i: int) -> Tensor:
            return self.weights[i][k] if self.feature_major else self.weights[i][k].T

        def bias(i: int) -> Tensor:
            return self.biases[i][k, :, 0] if self.feature_major else self.biases[i][k, 0]

        with torch.no_grad():
            for i, layer in enumerate(body):
                layer.weight.copy_(weight(i))
                layer.bias.copy_(bias(i))
            head_w, head_b = weight(self.n_body), bias(self.n_body)
            model.mu.weight.copy_(head_w[: self.latent_dim])
            model.logvar.weight.copy_(head_w[self.latent_dim :])
            model.mu.bias.copy_(head_b[: self.latent_dim])
            model.logvar.bias.copy_(head_b[self.latent_dim :])
            for i, layer in enumerate(decoder):
                layer.weight.copy_(weight(self.n_body + 1 + i))
                layer.bias.copy_(bias(self.n_body + 1 + i))
        return model.eval()


class MemberLosses:
    """The per-member objective (docs/method.md section 2, eqs. 1-3 and 9 of the paper), vectorised.

    Members with the same (loss, reduction) are evaluated together by the registered metric, so
    any metric of ``isosweep.trainers.metrics`` works and gives exactly its unfused value.
    """

    def __init__(self, cfgs: Sequence[TrialConfig], dtype: torch.dtype, where: DeviceLike = None):
        self.form = cfgs[0].form
        device = resolve(where)
        # One (K, 1) tensor per weight of the form (lambda; or lambda1, lambda2), broadcast over the batch.
        self.weights = tuple(
            torch.tensor([[w] for w in column], dtype=dtype, device=device)
            for column in zip(*(form_weights(c) for c in cfgs))
        )
        self.groups = self._groups([(c.loss, c.reduction) for c in cfgs], device)
        self.transform_groups = self._groups([(c.transform_metric or c.loss, c.reduction) for c in cfgs], device)

    @staticmethod
    def _groups(names: list[tuple[str, str]], device: torch.device) -> list[tuple[Metric, str, Tensor | None]]:
        distinct = sorted(set(names))
        if len(distinct) == 1:
            return [(get_metric(distinct[0][0]), distinct[0][1], None)]
        return [
            (get_metric(loss), red, torch.tensor([i for i, n in enumerate(names) if n == (loss, red)], device=device))
            for loss, red in distinct
        ]

    @staticmethod
    def _apply(groups: list[tuple[Metric, str, Tensor | None]], a: Tensor, b: Tensor, distance: bool) -> Tensor:
        k, batch = a.shape[0], a.shape[1]
        out: Tensor | None = None
        for metric, reduction, idx in groups:
            fn = metric.distance if distance else metric
            if idx is None:
                return fn(a.reshape(k * batch, -1), b.reshape(k * batch, -1), reduction).reshape(k, batch)
            value = fn(a[idx].reshape(len(idx) * batch, -1), b[idx].reshape(len(idx) * batch, -1), reduction)
            if out is None:
                out = a.new_zeros(k, batch)
            out = out.index_copy(0, idx, value.reshape(len(idx), batch))
        assert out is not None
        return out

    def terms(self, model: StackedVAE, x: Tensor, eps: Tensor) -> dict[str, Tensor]:
        """Per-member, per-sample terms, each (K, B): the one objective of
        ``isosweep.trainers.objective.vae_terms``, each member with its own metric and weights."""
        return vae_terms(
            model,
            x,
            eps,
            self.form,
            self.weights,
            recon=functools.partial(self._apply, self.groups, distance=False),
            transform=functools.partial(self._apply, self.transform_groups, distance=False),
            coding=functools.partial(self._apply, self.groups, distance=True),
        )


def freeze_member(k: int, params: Sequence[Tensor], optimiser: torch.optim.Optimizer, weight: Tensor) -> None:
    """Stop member k of a stacked model: zero its parameters, Adam moments and loss weight; with
    its data zeroed too (the caller's), it computes only zeros (finite, zero gradients, zero
    updates) and cannot disturb the other members."""
    with torch.no_grad():
        weight[k] = 0.0
        for p in params:
            p[k] = 0.0
            for value in optimiser.state.get(p, {}).values():
                if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == p.shape[0]:
                    value[k] = 0.0
