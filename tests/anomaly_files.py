"""Small generated files in the formats of the real anomaly data sets (docs/method.md 5.3), so that the
loaders and the anomaly study run end to end where the real copies are absent."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import scipy.io

KDD_SERVICES = ("http", "smtp", "ftp_data", "private", "ecr_i")
KDD_FLAGS = ("SF", "S0", "REJ")
KDD_ATTACKS = ("smurf.", "neptune.", "back.", "satan.")


def kdd_rows(n: int, normal_share: float, rng: np.random.Generator) -> list[str]:
    """``n`` rows of the KDD Cup 99 CSV: 41 features (7 symbolic) and a label ending in '.'."""
    rows = []
    for _ in range(n):
        normal = rng.random() < normal_share
        numeric = rng.random(41) * (1.0 if normal else 3.0)
        fields = [f"{v:.2f}" for v in numeric]
        fields[0] = str(int(rng.integers(0, 100)))
        fields[1] = str(rng.choice(("tcp", "udp", "icmp")))
        fields[2] = str(rng.choice(KDD_SERVICES))
        fields[3] = str(rng.choice(KDD_FLAGS))
        for col in (6, 11, 21):
            fields[col] = str(int(rng.integers(0, 2)))
        fields[20] = "0"
        label = "normal." if normal else str(rng.choice(KDD_ATTACKS))
        rows.append(",".join([*fields, label]))
    return rows


def odds_arrays(n: int, m: int, n_anomaly: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An ODDS-like data set: normal rows near a low-dimensional subspace, anomalies off it."""
    basis = rng.normal(size=(3, m))
    x = rng.normal(size=(n, 3)) @ basis + 0.05 * rng.normal(size=(n, m))
    y = np.zeros((n, 1))
    anomalies = rng.choice(n, n_anomaly, replace=False)
    x[anomalies] += rng.normal(0.0, 2.0, size=(n_anomaly, m))
    y[anomalies] = 1
    return x, y


def write_anomaly_files(root: Path, seed: int = 0, kdd_rows_n: int = 600, gz: bool = True) -> Path:
    """Write kddcup99/kddcup.data_10_percent[.gz], thyroid/thyroid.mat and
    arrhythmia/arrhythmia.mat under ``root`` (small, with the real files' anomaly shares)."""
    rng = np.random.default_rng(seed)
    (root / "kddcup99").mkdir(parents=True, exist_ok=True)
    text = ("\n".join(kdd_rows(kdd_rows_n, 0.2, rng)) + "\n").encode()
    if gz:
        (root / "kddcup99" / "kddcup.data_10_percent.gz").write_bytes(gzip.compress(text))
    else:
        (root / "kddcup99" / "kddcup.data_10_percent").write_bytes(text)
    for name, n, m, n_anomaly in (("thyroid", 400, 6, 10), ("arrhythmia", 120, 274, 18)):
        (root / name).mkdir(parents=True, exist_ok=True)
        x, y = odds_arrays(n, m, n_anomaly, rng)
        scipy.io.savemat(str(root / name / f"{name}.mat"), {"X": x, "y": y})
    return root
