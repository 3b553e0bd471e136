"""The store on S3, served by a real S3-compatible server (moto) on 127.0.0.1 (the fixture
``s3_server`` of tests/conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from helpers import EXE, cli_env, free_port, isosweep


@pytest.mark.slow  # a Ray sweep on S3, killed and resumed
def test_sweep_status_query_compact_and_resume_on_s3(s3_server):
    url = "s3://isosweep-test/sweeps"
    args = ["run", "toy", "--budget", "smoke", "--where", "dataset=mix,loss=se|dconv", "--store", url]
    # Kill the driver while a trials file is being written to S3, then resume the Ray experiment.
    proc = subprocess.Popen(
        [EXE, *args],
        env={**cli_env(), "ISOSWEEP_TEST_KILL_IN_WRITE": "8"},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proc.wait(timeout=300)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    assert proc.returncode == -9
    resumed = isosweep("resume", "toy-smoke", "--store", url).stdout
    assert "ok 20, failed 0, diverged 0, missing 0 of 20" in resumed
    out = isosweep(
        "query", "select count(*) as n, count(distinct trial_key) as k from trials", "--store", url, "--format", "json"
    ).stdout
    assert json.loads(out) == {"n": 20, "k": 20}
    status = isosweep("status", "--store", url).stdout
    assert status.splitlines()[2].split()[:4] == ["toy", "smoke", "90", "20"]
    assert "20 already complete, 0 to run" in isosweep(*args).stdout
    isosweep("compact", "--store", url)
    out = isosweep("query", "select count(*) as n from dims", "--store", url, "--format", "json").stdout
    assert json.loads(out) == {"n": 60}


def test_unreachable_object_store_is_one_line_exit_2(tmp_path):
    env = {
        **cli_env(),
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "AWS_MAX_ATTEMPTS": "1",
    }
    proc = subprocess.run(
        [EXE, "run", "toy", "--store", "s3://nowhere/x"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("isosweep: error: cannot reach store") and proc.stderr.count("\n") == 1
