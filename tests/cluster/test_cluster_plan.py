"""A sweep is planned for the cluster it runs on, read after connecting: a Ray head with 8 (logical)
GPUs gets at least 8 GPU bundles for the toy ablation, where this 2-core machine alone plans 2."""

from __future__ import annotations

import re

import pytest
from netns import BIN, NetnsCluster, unavailable

pytestmark = pytest.mark.slow  # a Ray head in a network namespace, with dry runs against it


@pytest.fixture(scope="module")
def gpu_head():
    why = unavailable()
    if why is not None:
        pytest.skip(why)
    c = NetnsCluster()
    try:
        head = c.add_host("head")
        c.ray_start(head, num_cpus=16, num_gpus=8)
        c.env.update(c.ray_env())
        yield c, head
    finally:
        c.close()


def _bundles(out: str) -> list[int]:
    return [int(n) for n in re.findall(r"^  bundle \d+: (\d+) trial\(s\)", out, re.MULTILINE)]


def test_a_dry_run_against_8_gpus_plans_a_bundle_per_gpu(gpu_head, tmp_path):
    c, head = gpu_head
    args = ["run", "toy", "--budget", "paper", "--dry-run", "--store", str(tmp_path / "store")]
    done = c.run(head, [str(BIN / "isosweep"), *args, "--address", f"{head.address}:6379"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "planned for 8 trial(s) at once on the Ray cluster, each with 1 CPU(s) and 1 GPU(s)" in done.stdout
    sizes = _bundles(done.stdout)
    assert len(sizes) >= 8 and sum(sizes) == 90, done.stdout
    # The same dry run without --address plans for this machine's cores, not for that cluster.
    local = c.run(head, [str(BIN / "isosweep"), *args])
    assert local.returncode == 0 and len(_bundles(local.stdout)) < 8, local.stdout
    assert not (tmp_path / "store").exists()  # a dry run writes nothing


def test_gpus_per_trial_packs_more_trials_on_each_gpu(gpu_head, tmp_path):
    c, head = gpu_head
    done = c.run(
        head,
        [
            str(BIN / "isosweep"),
            "run",
            "toy",
            "--budget",
            "paper",
            "--dry-run",
            "--gpus-per-trial",
            "0.5",
            "--store",
            str(tmp_path / "store"),
            "--address",
            f"{head.address}:6379",
        ],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "planned for 16 trial(s) at once" in done.stdout
    # 90 trials over 16 slots: bundles of ceil(90 / 16) = 6, so 15 of them.
    assert _bundles(done.stdout) == [6] * 15
