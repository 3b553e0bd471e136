"""Node loss: a Ray cluster of a head and two worker nodes; one worker node is removed while its
trials run. Ray reschedules them from their checkpoints and the sweep completes exactly once."""

from __future__ import annotations

import re
import threading
import time

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from isosweep.orchestrator.launch import run_sweep  # noqa: E402
from isosweep.orchestrator.options import RunOptions  # noqa: E402
from isosweep.orchestrator.plan import make_plan  # noqa: E402
from isosweep.store import Store  # noqa: E402
from isosweep.studies import get_study  # noqa: E402


@pytest.mark.slow
def test_removing_a_worker_node_mid_sweep(tmp_path):
    # Trials of about a second each, so that some are surely running when the node goes.
    configs = [
        c.__class__(**{**c.to_dict(), "hidden": tuple(c.hidden), "epochs": 20, "n_train": 2048})
        for c in get_study("toy").configs("smoke", where={"dataset": ("mix",), "loss": ("se", "dconv")})
    ]
    store = Store(str(tmp_path / "store"))
    plan = make_plan(configs, set(), 1, slots=2, force=False)
    # An earlier test in this process may have left a local Ray connected (a sweep run in process
    # through isosweep.cli.main, refused after connecting): this test needs its own cluster.
    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    outcome: dict = {}
    try:
        runner = threading.Thread(
            target=lambda: outcome.update(
                counts=run_sweep(plan, store, RunOptions(sweep="node-loss", max_failures=3, compact=False))
            )
        )
        runner.start()
        deadline = time.monotonic() + 300
        while len(store.table_files("trials")) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        done_before = len(store.table_files("trials"))
        assert done_before < len(configs), "the sweep finished before the node could be removed"
        cluster.remove_node(workers[0])
        runner.join(timeout=600)
        assert not runner.is_alive()
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert outcome["counts"] == {"ok": 20, "failed": 0, "diverged": 0, "damaged": 0, "missing": 0}
    states = store.trial_states()
    assert sorted(states) == sorted(c.key for c in configs)
    assert len(store.table_files("trials")) == 20  # one file per trial (compact=False): none written twice
    # Ray saw the loss: some trial failed with the node and was run again elsewhere.
    state = sorted((tmp_path / "store" / "ray" / "node-loss").glob("experiment_state-*.json"))[-1].read_text()
    failures = [int(n) for n in re.findall(r'num_failures\\": (\d+)', state)]
    assert failures and max(failures) >= 1
