"""On a CUDA device: fused training (toy and anomaly) equals one-by-one training, a checkpoint taken
on the GPU resumes on the CPU, and a sweep records the GPU's name as the trials' device. Marked
``gpu``: skipped where there is no CUDA device (the default suite never needs one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import isosweep

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]

RTOL = 1e-5


def test_fused_anomaly_members_on_cuda_equal_one_by_one_training_in_float64():
    from test_anomaly_fused import DIVERGING, RATIO, _bundle

    from isosweep.trainers.anomaly import train_anomaly, train_anomaly_bundle
    from isosweep.trainers.training import TrialDiverged

    cfgs, splits = _bundle()
    # On a GPU one masked unit holds every member of a batch count (the default there).
    fused = train_anomaly_bundle(cfgs, splits, [RATIO] * len(cfgs), dtype=torch.float64, where="cuda")
    for k, (cfg, split, member) in enumerate(zip(cfgs, splits, fused)):
        if k == DIVERGING:
            with pytest.raises(TrialDiverged):
                train_anomaly(cfg, split, RATIO, dtype=torch.float64, where="cuda")
            assert member.outcome is None and "by epoch 1" in member.diverged
            continue
        got = member.outcome
        assert got is not None and next(got.model.parameters()).is_cuda
        for where in ("cuda", "cpu"):
            alone = train_anomaly(cfg, split, RATIO, dtype=torch.float64, where=where)
            assert got.best.epoch == alone.best.epoch
            for p, q in zip(got.model.state_dict().values(), alone.model.state_dict().values()):
                torch.testing.assert_close(p.cpu(), q.cpu(), rtol=RTOL, atol=1e-8)
            assert [c["f1"] for c in got.curves] == [c["f1"] for c in alone.curves]
            np.testing.assert_allclose(got.best.scores, alone.best.scores, rtol=RTOL)


def test_fused_toy_members_on_cuda_equal_one_by_one_training_in_float64():
    from test_fused import MEMBERS

    from isosweep.trainers.data import make_data
    from isosweep.trainers.fused import train_bundle

    datas = [make_data(c) for c in MEMBERS]
    fused = train_bundle(MEMBERS, datas, dtype=torch.float64, where="cuda")
    for cfg, data, member in zip(MEMBERS, datas, fused):
        for where in ("cuda", "cpu"):
            (alone,) = train_bundle([cfg], [data], dtype=torch.float64, where=where)
            for p, q in zip(member.model.state_dict().values(), alone.model.state_dict().values()):
                torch.testing.assert_close(p.cpu(), q.cpu(), rtol=RTOL, atol=1e-8)
            assert [c["loss"] for c in member.curves] == pytest.approx([c["loss"] for c in alone.curves], rel=RTOL)


def test_a_checkpoint_taken_on_the_gpu_resumes_on_the_cpu():
    from test_fused import MEMBERS

    from isosweep.trainers.data import make_data
    from isosweep.trainers.fused import train_bundle

    datas = [make_data(c) for c in MEMBERS]
    saved = {}

    def report(metrics, make_checkpoint):
        if metrics["epoch"] == 6:
            saved["checkpoint"] = make_checkpoint()

    whole = train_bundle(MEMBERS, datas, report=report, dtype=torch.float64, where="cuda")
    tensors = [t for t in saved["checkpoint"]["params"]] + [saved["checkpoint"]["weight"]]
    assert all(t.device.type == "cpu" for t in tensors)
    resumed = train_bundle(MEMBERS, datas, checkpoint=saved["checkpoint"], dtype=torch.float64, where="cpu")
    for a, b in zip(whole, resumed):
        for p, q in zip(a.model.parameters(), b.model.parameters()):
            torch.testing.assert_close(p.cpu(), q, rtol=RTOL, atol=1e-8)


def test_a_sweep_on_a_gpu_records_the_gpus_name(tmp_path):
    """On Ray where it is installed, else with the local executor (``python -m isosweep``, as on a
    GPU machine without Ray); the store is read with pyarrow, which every machine has."""
    import importlib.util
    import subprocess
    import sys

    import pyarrow.parquet as pq
    from anomaly_files import write_anomaly_files

    from helpers import cli_env

    on_ray = importlib.util.find_spec("ray") is not None
    executor = ["--gpus-per-trial", "0.5"] if on_ray else ["--executor", "local"]
    store = str(tmp_path / "store")
    root = str(write_anomaly_files(tmp_path / "data"))
    for study, where in [("toy", "lam=100"), ("anomaly", "dataset=thyroid")]:
        args = ["run", study, "--budget", "smoke", "--where", where, *executor, "--data-root", root, "--store", store]
        if on_ray:
            isosweep(*args)
        else:
            proc = subprocess.run(
                [sys.executable, "-m", "isosweep", *args], capture_output=True, text=True, env=cli_env(), timeout=600
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr
    files = sorted((tmp_path / "store" / "trials").glob("*/*.parquet"))
    rows = [row for f in files for row in pq.read_table(f, columns=["status", "device"]).to_pylist()]
    assert len(rows) == 9 + 4 and {r["status"] for r in rows} == {"ok"}
    assert {r["device"] for r in rows} == {torch.cuda.get_device_name(0)}


def test_a_captured_toy_bundle_equals_one_by_one_training_in_float64():
    """Each epoch replayed as one CUDA graph: the same results as one-by-one eager training, a
    diverging member frozen and recorded, and a checkpoint that resumes on the CPU."""
    from test_fused import MEMBERS

    from isosweep.trainers.data import TrialData, make_data
    from isosweep.trainers.fused import train_bundle

    datas = [make_data(c) for c in MEMBERS]
    poisoned = TrialData(datas[1].train.copy(), datas[1].eval, datas[1].eval_log_p)
    poisoned.train[5, 0] = np.nan
    datas[1] = poisoned
    saved = {}

    def report(metrics, make_checkpoint):
        if metrics["epoch"] == 6:
            saved["checkpoint"] = make_checkpoint()

    captured = train_bundle(MEMBERS, datas, report=report, dtype=torch.float64, where="cuda", capture=True)
    assert captured[1].model is None and "epoch 1" in captured[1].diverged
    resumed = train_bundle(MEMBERS, datas, checkpoint=saved["checkpoint"], dtype=torch.float64, where="cpu")
    for k in (0, 2, 3):
        (alone,) = train_bundle([MEMBERS[k]], [datas[k]], dtype=torch.float64, where="cuda")
        assert captured[k].steps == alone.steps
        assert [c["loss"] for c in captured[k].curves] == pytest.approx([c["loss"] for c in alone.curves], rel=RTOL)
        for p, q, r in zip(captured[k].model.parameters(), alone.model.parameters(), resumed[k].model.parameters()):
            torch.testing.assert_close(p, q, rtol=RTOL, atol=1e-8)
            torch.testing.assert_close(p.cpu(), r, rtol=RTOL, atol=1e-8)
