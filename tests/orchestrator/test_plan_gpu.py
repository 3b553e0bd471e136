"""`--fuse auto` on GPUs: bundles sized by the per-member memory estimate and the GPU slots, not
by CPU cores; on CPUs the rule is unchanged."""

from __future__ import annotations

import math

from isosweep.orchestrator.plan import (
    GPU_MEMORY_SHARE,
    GPU_RESERVED_BYTES,
    GpuBudget,
    gpu_bundle_size,
    make_bundles,
    make_plan,
)
from isosweep.studies import STUDIES
from isosweep.trainers.memory import member_bytes

GIB = 1 << 30


def _anomaly(dataset: str, seeds: int = 20):
    return STUDIES["anomaly"].configs("paper", seeds=seeds, where={"dataset": (dataset,)})


def test_a_large_gpu_takes_a_whole_data_set_per_bundle():
    thyroid = _anomaly("thyroid")
    assert len(thyroid) == 500
    assert gpu_bundle_size(thyroid, GpuBudget(140 * GIB, 1)) == 500
    # Four trials per GPU on two GPUs: eight slots share the 500 trials.
    assert gpu_bundle_size(thyroid, GpuBudget(35 * GIB, 8)) == math.ceil(500 / 8)


def test_memory_caps_the_members_of_a_bundle():
    kddcup = _anomaly("kddcup")
    fit = int((GPU_MEMORY_SHARE * 16 * GIB - GPU_RESERVED_BYTES) // member_bytes(kddcup[0]))
    assert 10 < fit < 500
    assert gpu_bundle_size(kddcup, GpuBudget(16 * GIB, 1)) == fit
    bundles = make_bundles(kddcup, "auto", slots=2, gpu=GpuBudget(16 * GIB, 1))
    assert sum(len(b) for b in bundles) == 500 and max(len(b) for b in bundles) <= fit
    # A GPU too small for even one member's estimate still runs one member per bundle.
    assert gpu_bundle_size(kddcup, GpuBudget(1 * GIB, 1)) == 1


def test_without_a_gpu_the_cpu_rule_stays_and_a_fixed_size_is_kept():
    toy = STUDIES["toy"].configs("quick")
    plan = make_plan(toy, set(), "auto", 2, force=False)
    assert [len(b) for b in plan.bundles] == [45, 45]
    on_gpu = plan.for_gpu(GpuBudget(80 * GIB, 1))
    assert [len(b) for b in on_gpu.bundles] == [90] and on_gpu.planned == plan.planned
    fixed = make_plan(toy, set(), 10, 2, force=False)
    assert fixed.for_gpu(GpuBudget(80 * GIB, 1)) is fixed
