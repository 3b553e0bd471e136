"""A sweep on a real multi-host Ray cluster, all on this machine (``tests/cluster/netns.py``): a
head and two workers, each started by ``ray start`` in its own network namespace with its own
address and host name, and the store on an S3-compatible server (moto) in a fourth namespace that
every host reaches over the bridge. The CLI drives the sweep from the head with
``--address HEAD:6379``, as on a real cluster. Run with ``make test-slow`` or
``.venv/bin/python -m pytest -q -m slow tests/cluster``.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from netns import BIN, Host, NetnsCluster, unavailable

pytestmark = pytest.mark.slow

SWEEP = ("run", "toy", "--budget", "smoke", "--where", "dataset=mix", "--fuse", "off")
PLANNED = 30  # mix x 3 losses x 10 lambdas, one seed
BUCKET = "isosweep-cluster"


@pytest.fixture(scope="module")
def cluster():
    why = unavailable()
    if why is not None:
        pytest.skip(why)
    c = NetnsCluster()
    try:
        head, w1, w2, s3 = (c.add_host(name) for name in ("head", "worker1", "worker2", "s3"))
        c.start(s3, [str(BIN / "moto_server"), "-H", s3.address, "-p", "5000"])
        c.wait_port(head, s3.address, 5000)
        env = {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://{s3.address}:5000",
        }
        made = c.run(
            head, [str(BIN / "python"), "-c", f"import fsspec; fsspec.filesystem('s3').mkdir({BUCKET!r})"], env=env
        )
        assert made.returncode == 0, made.stderr
        # No trial runs on the head (as in cluster.yaml): the workers do all the training.
        c.ray_start(head, num_cpus=0, env=env)
        for worker in (w1, w2):
            c.ray_start(worker, head=head, num_cpus=1, env=env)
        c.env.update({**env, **c.ray_env()})
        yield c
    finally:
        c.close()


def isosweep(c: NetnsCluster, host: Host, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return c.run(host, [str(BIN / "isosweep"), *args], timeout=timeout)


def query(c: NetnsCluster, store: str, sql: str, before_first_trial: bool = False) -> list[dict]:
    done = isosweep(c, c.hosts["head"], "query", sql, "--store", store, "--format", "json")
    if before_first_trial and done.returncode == 2 and "does not exist" in done.stderr:
        return []
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]  # one JSON object a row


def test_a_sweep_spreads_over_both_workers_and_survives_losing_one(cluster):
    c = cluster
    head, w2 = c.hosts["head"], c.hosts["worker2"]
    store = f"s3://{BUCKET}/sweep-{uuid.uuid4().hex[:6]}"
    address = f"{head.address}:6379"
    started = time.monotonic()
    sweep = subprocess.Popen(
        head.command(str(BIN / "isosweep"), *SWEEP, "--store", store, "--address", address, env=c.env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # The sweep's output is read only at the end: at most a few kB, well within the pipe's buffer.
    # Let both workers finish trials, then take worker2 away as a machine that loses power.
    removed_after = None
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and sweep.poll() is None:
        rows = query(c, store, "select hostname, count(*) as n from trials group by hostname", before_first_trial=True)
        done = {r["hostname"]: r["n"] for r in rows}
        if done.get("worker1", 0) >= 2 and done.get("worker2", 0) >= 2:
            removed_after = sum(done.values())
            c.remove(w2)
            break
        time.sleep(2)
    out, _ = sweep.communicate(timeout=600)
    wall = time.monotonic() - started
    assert removed_after is not None and removed_after < PLANNED, f"worker2 was not removed mid-sweep:\n{out}"
    assert sweep.returncode == 0, out
    assert f"ok {PLANNED}, failed 0, diverged 0, missing 0 of {PLANNED}" in out, out

    rows = query(
        c,
        store,
        "select count(*) as n, count(distinct trial_key) as keys, "
        "count(*) filter (where status = 'ok') as ok from trials",
    )
    assert rows == [{"n": PLANNED, "keys": PLANNED, "ok": PLANNED}]
    hosts = {r["hostname"] for r in query(c, store, "select distinct hostname from trials")}
    assert hosts == {"worker1", "worker2"}
    # Exactly once: one trials row per key in the raw files (per-trial or compacted at the sweep's
    # end), and every trial's tables written by the same run.
    count_rows = (
        "import fsspec, pyarrow.parquet as pq; fs = fsspec.filesystem('s3'); "
        f"print(sum(pq.read_metadata(fs.open(p)).num_rows for p in fs.glob('{store[5:]}/trials/*/*.parquet')))"
    )
    files = c.run(head, [str(BIN / "python"), "-c", count_rows])
    assert files.stdout.strip() == str(PLANNED), files.stderr
    mismatched = query(
        c,
        store,
        "select count(*) as n from trials t where (select count(*) from dims d "
        "where d.trial_key = t.trial_key and d.run_id = t.run_id) <> t.latent_dim",
    )
    assert mismatched == [{"n": 0}]
    print(f"multi-host sweep: {PLANNED} trials in {wall:.0f} s, worker2 removed after {removed_after}")


def test_a_local_disk_store_is_refused_on_a_multi_host_cluster(cluster):
    c = cluster
    head = c.hosts["head"]
    folder = f"/tmp/isosweep-local-{uuid.uuid4().hex[:6]}"
    done = isosweep(c, head, *SWEEP, "--store", f"{folder}/store", "--address", f"{head.address}:6379")
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "local disk" in lines[0] and "Traceback" not in done.stderr, done.stderr
    check = c.run(head, ["test", "-e", folder])
    assert check.returncode != 0, f"the refused run left {folder} behind"


def test_the_data_root_reaches_every_worker_from_s3_and_a_local_one_is_refused(cluster):
    c = cluster
    head = c.hosts["head"]
    data = Path(__file__).resolve().parents[3] / "shared" / "data" / "thyroid" / "thyroid.mat"
    if not data.is_file():
        pytest.skip(f"the real Thyroid file is not present at {data}")
    copy = c.run(
        head,
        [
            str(BIN / "python"),
            "-c",
            f"import fsspec, sys; fsspec.filesystem('s3').put_file(sys.argv[1], '{BUCKET}/data/thyroid/thyroid.mat')",
            str(data),
        ],
    )
    assert copy.returncode == 0, copy.stderr
    address = f"{head.address}:6379"
    anomaly = ("run", "anomaly", "--budget", "smoke", "--where", "dataset=thyroid", "--address", address)
    store = f"s3://{BUCKET}/anomaly-{uuid.uuid4().hex[:6]}"
    done = isosweep(c, head, *anomaly, "--data-root", f"s3://{BUCKET}/data", "--store", store)
    assert done.returncode == 0 and "ok 4, failed 0, diverged 0, missing 0 of 4" in done.stdout, (
        done.stdout + done.stderr
    )
    # A folder on the head's disk would be missing on the workers: refused before anything runs.
    local = isosweep(c, head, *anomaly, "--data-root", str(data.parents[1]), "--store", f"{store}-local")
    lines = local.stderr.strip().splitlines()
    assert local.returncode == 2 and len(lines) == 1 and "--data-root" in lines[0], local.stdout + local.stderr
    assert query(c, f"{store}-local", "select 1", before_first_trial=True) == []  # no store was created
