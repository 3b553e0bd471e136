"""Freed training buffers stay in the process (``isosweep.trainers.allocator``): once warm, a
fused training step allocates what the last one freed and touches no new pages."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import resource, sys
import torch
from isosweep.studies import get_study
from isosweep.trainers.allocator import keep_freed_memory
from isosweep.trainers.stacked import MemberLosses, StackedVAE
from isosweep.trainers.models import build_model

torch.set_num_threads(1)
if sys.argv[1] == "keep":
    assert keep_freed_memory()
# One step of 16 stacked Thyroid members (6-60-30-6), as a fused anomaly bundle trains them.
cfgs = get_study("anomaly").configs("quick", where={"dataset": ("thyroid",)})[:16]
stacked = StackedVAE.from_models([build_model(6, c.hidden, c.latent_dim, c.activation, c.seed) for c in cfgs],
                                 cfgs[0].activation, torch.float32, feature_major=True)
losses = MemberLosses(cfgs, torch.float32)
adam = torch.optim.Adam(stacked.parameters(), lr=1e-4)
x, eps = torch.rand(16, 1024, 6), torch.randn(16, 1024, 6)

def step():
    adam.zero_grad(set_to_none=True)
    losses.terms(stacked, x, eps)["loss"].mean(dim=1).sum().backward()
    adam.step()

for _ in range(10):  # the heap grows to its peak
    step()
counts = []
for _ in range(20):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step()
    counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sorted(counts)[len(counts) // 2])  # the median step: a rare step may still grow the heap
"""


def faults_per_step(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_warm_fused_step_makes_no_page_faults():
    kept, default = faults_per_step("keep"), faults_per_step("default")
    # Measured here, six runs: a median of 0 faults per step kept, 2,848 to 4,768 with glibc's
    # defaults, which map the step's large buffers afresh. How many the defaults make depends on
    # the machine's state too: once, with another sweep running beside the suite, a median of 1.
    # So only the kept side has a bound.
    assert kept < 20
    assert kept <= default
