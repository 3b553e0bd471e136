"""The per-member memory estimate that sizes GPU bundles covers what a stacked step keeps for its
backward pass (measured on the CPU with autograd's saved-tensor hooks)."""

from __future__ import annotations

import pytest
import torch

from isosweep.studies import STUDIES
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.memory import SAVED_BYTES, activation_width, member_bytes, member_shape, parameter_count
from isosweep.trainers.models import build_model
from isosweep.trainers.stacked import MemberLosses, StackedVAE


def saved_bytes_per_member(cfgs: list[TrialConfig], feature_major: bool) -> float:
    """Bytes autograd saves for the backward pass of one stacked step, per member (the difference
    between a bundle of 5 and a bundle of 1, over 4), parameters not counted."""

    def one(members: list[TrialConfig]) -> int:
        inputs, rows = member_shape(members[0])
        batch = min(members[0].batch_size, rows)
        models = [build_model(inputs, c.hidden, c.latent_dim, c.activation, c.seed) for c in members]
        stacked = StackedVAE.from_models(models, members[0].activation, torch.float32, feature_major=feature_major)
        params = {p.untyped_storage().data_ptr() for p in stacked.parameters()}
        seen: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            storage = t.untyped_storage()
            if storage.data_ptr() not in params:
                seen[storage.data_ptr()] = storage.nbytes()
            return t

        x = torch.rand(len(members), batch, inputs)
        eps = torch.randn(len(members), batch, members[0].latent_dim)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = MemberLosses(members, torch.float32).terms(stacked, x, eps)["loss"].mean(dim=1).sum()
        loss.backward()
        return sum(seen.values())

    return (one(cfgs[:5]) - one(cfgs[:1])) / 4


@pytest.mark.parametrize(
    "study,dataset,feature_major",
    [("toy", "mix", False), ("anomaly", "thyroid", True), ("anomaly", "arrhythmia", True)],
)
def test_the_estimate_covers_the_saved_activations(study, dataset, feature_major):
    cfgs = STUDIES[study].configs("quick", where={"dataset": (dataset,)})
    inputs, rows = member_shape(cfgs[0])
    batch = min(cfgs[0].batch_size, rows)
    measured = saved_bytes_per_member(cfgs, feature_major)
    bound = SAVED_BYTES * batch * activation_width(cfgs[0], inputs)
    assert 0.4 * bound < measured <= bound
    assert member_bytes(cfgs[0]) > measured + 16 * parameter_count(cfgs[0], inputs)


def test_shapes_and_counts():
    (thyroid,) = STUDIES["anomaly-paper"].configs("quick", seeds=1, where={"dataset": ("thyroid",)})
    assert member_shape(thyroid) == (6, 1_659)
    # 6-60-30-(6+6) and 6-30-60-6: weights and biases.
    assert parameter_count(thyroid, 6) == 7 * 60 + 61 * 30 + 31 * 12 + 7 * 30 + 31 * 60 + 61 * 6
