"""Helpers of the hostile-input suite: fabricated stores and byte-for-byte snapshots."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path

from isosweep.store import Store
from isosweep.studies import STUDIES
from isosweep.trainers.config import TrialConfig
from isosweep.trainers.records import TrialResult, TrialStatus


def write_trial(store: Store, cfg: TrialConfig) -> str:
    """One fabricated ok trial (``cfg``), written as a sweep writes it (the rows matter here, not
    the science); returns its key."""
    now = datetime.now(timezone.utc)
    dims = [{"dim": j, "rank": j + 1, "active": True, "norm_mean": 1.0, "norm_sd": 0.1, "dprime_mean": 1.0,
             "dprime_sd": 0.1, "sigma_inv2_mean": 4.0 ** (2 - j), "var_ratio": 4.0 ** (2 - j), "kl_mean": 1.0}
            for j in range(3)]
    result = TrialResult(cfg, TrialStatus.OK, now, now, scalars={"n_active": 3, "corr_post": 0.9}, dims=dims,
                         curves=[{"step": 1, "epoch": 1, "loss": 1.0, "recon": 0.5, "kl": 0.5}])
    store.write_result(result, "test", {})
    return cfg.key


def make_store(path: Path, trials: int = 3) -> list[str]:
    """A small local store holding the first ``trials`` trials of ``isosweep run toy`` (smoke
    budget), fabricated; their keys. A dry run of the toy study counts them as complete."""
    store = Store(str(path))
    return [write_trial(store, cfg) for cfg in STUDIES["toy"].configs("smoke")[:trials]]


Snapshot = dict[str, tuple[str, str]]


def snapshot(*roots: Path) -> Snapshot:
    """Every file, folder and link below ``roots`` (the roots included): kind and content hash
    (files), target (links), mode (folders). Two equal snapshots mean nothing was created,
    removed or changed there, byte for byte."""
    out: Snapshot = {}
    for root in roots:
        if not os.path.lexists(root):
            out[str(root)] = ("absent", "")
            continue
        for parent, dirs, files in os.walk(root, followlinks=False):
            p = Path(parent)
            out[str(p)] = ("dir", oct(p.stat().st_mode))
            for name in [*dirs, *files]:
                q = p / name
                if q.is_symlink():
                    out[str(q)] = ("link", os.readlink(q))
                elif q.is_file():
                    out[str(q)] = ("file", hashlib.sha256(q.read_bytes()).hexdigest())
    return out
