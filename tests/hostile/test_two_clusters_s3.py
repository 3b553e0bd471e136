"""Two clusters on one object store: two `isosweep run` drivers, each with its own local Ray
instance, run the same six trials at once on one S3 store (a real moto server, the fixture
``s3_server`` of tests/conftest.py), with ``--fuse 1`` so that every trial is its own Ray trial
and both drivers train. Each trial is trained once in all: the drivers' progress lines sum to the
planned trials, and the store's own history agrees (the bucket keeps every version of every file,
so a trials row written by a second training stays countable after compaction merged or
replaced it). The tables hold six rows of six keys, each trial's dims from its own run."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest
from support import trained

from helpers import EXE, cli_env
from isosweep.analysis.db import run_query

BUCKET = "isosweep-two-clusters"
SWEEP = ("run", "toy", "--budget", "smoke", "--where", "dataset=mix,lam=10|100", "--fuse", "1")
PLANNED = 6
DIMS_PER_TRIAL = 3
"""The toy study's latent size: one dims row per latent dimension."""


def s3_client():
    """A boto3 client of the moto server (``AWS_ENDPOINT_URL``, set by ``s3_server``)."""
    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def versioned_bucket(prefix: str) -> str:
    """The test bucket (created once, with versioning on, so that no write is ever lost from the
    bucket's history), and a fresh store URL in it."""
    client = s3_client()
    if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return f"s3://{BUCKET}/{prefix}"


def rows_of(prefix: str, table: str, all_versions: bool) -> list[dict]:
    """(trial_key, run_id) of every row in the Parquet files of ``table`` under ``prefix``: of
    the files there now, or (``all_versions``) of every version of every file ever written there,
    the deleted and replaced ones included."""
    client = s3_client()
    objects: list[tuple[str, str | None]] = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=BUCKET, Prefix=f"{prefix}/{table}/"):
        for v in page.get("Versions", []):
            if v["Key"].endswith(".parquet") and (all_versions or v["IsLatest"]):
                objects.append((v["Key"], v["VersionId"] if all_versions else None))
    live = set()
    if not all_versions:  # a latest version under a delete marker is no file of the store now
        live = {
            o["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{prefix}/{table}/")
            for o in page.get("Contents", [])
        }
    rows = []
    for key, version in objects:
        if not all_versions and key not in live:
            continue
        body = client.get_object(Bucket=BUCKET, Key=key, **({"VersionId": version} if version else {}))["Body"].read()
        rows += pq.read_table(io.BytesIO(body), columns=["trial_key", "run_id"]).to_pylist()
    return rows


@pytest.fixture
def ray_tmp() -> Iterator[Callable[[], str]]:
    """New Ray temporary folders, removed after the test: short paths under /tmp, since Ray's
    socket paths inside them must fit in 107 bytes."""
    made: list[str] = []

    def make() -> str:
        made.append(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        return made[-1]

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def start_driver(url: str, cwd: Path, ray_tmp: str) -> subprocess.Popen:
    """One driver and its own new local Ray instance (``isosweep run`` without --address never
    joins another Ray), with its own Ray temporary folder so that nothing of the two instances
    is shared but the store."""
    return subprocess.Popen(
        [EXE, *SWEEP, "--store", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**cli_env(), "RAY_TMPDIR": ray_tmp},
        cwd=cwd,
    )


@pytest.mark.slow  # two Ray instances start and train: about 2 minutes on a 2-core machine
def test_two_drivers_of_separate_ray_instances_train_each_trial_once(
    s3_server, tmp_path: Path, ray_tmp, capsys
) -> None:
    prefix = f"store-{time.monotonic_ns()}"
    url = versioned_bucket(prefix)
    started = time.monotonic()
    procs = [start_driver(url, tmp_path, ray_tmp()) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, f"{out}\n{err}"
    per_driver = [trained(out) for out, _ in outputs]
    with capsys.disabled():
        print(f"\ntwo drivers trained {per_driver} trials for {PLANNED} planned in {time.monotonic() - started:.0f} s")

    # Trainings, as the drivers report them and as the bucket's history records them: every
    # training that wrote its trial wrote a trials row of a new run_id, which no later file
    # (a compaction's, another run's) can remove from the history.
    assert sum(per_driver) == PLANNED
    history = rows_of(prefix, "trials", all_versions=True)
    assert len({r["run_id"] for r in history}) == PLANNED

    # The tables: six rows of six keys, and every trial's dims (as the views and the files hold
    # them now) from the run of its trials row only.
    rows = run_query(url, "select trial_key, run_id from trials").rows
    assert len(rows) == PLANNED == len({k for k, _ in rows})
    run_of = dict(rows)
    dims = run_query(url, "select trial_key, run_id from dims").rows
    assert sorted(k for k, _ in dims) == sorted(k for k in run_of for _ in range(DIMS_PER_TRIAL))
    assert all(run_of[k] == r for k, r in dims)
    for table in ("trials", "dims"):
        assert {(r["trial_key"], r["run_id"]) for r in rows_of(prefix, table, all_versions=False)} == set(rows), table
    claims = [
        o["Key"]
        for o in s3_client().list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/claims/").get("Contents", [])
        if "/owners/" not in o["Key"]
    ]
    assert claims == [], "claims left behind"
