"""Study `custom`: the toy ablation on a user's own CSV or Parquet file."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from helpers import isosweep
from isosweep.cli import main
from isosweep.trainers.data.custom import TOTAL_VARIANCE, prepare, split_rows

REPO = Path(__file__).resolve().parents[2]


def _example():
    """The README's example data (examples/gaussian.py), loaded from its file."""
    spec = importlib.util.spec_from_file_location("gaussian_example", REPO / "examples" / "gaussian.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gaussian_table(rows: int) -> pa.Table:
    """A 3-D Gaussian with variances 1/6, 2/3, 8/3 along rotated axes, shifted off the origin,
    with its exact density p(x) in column ``p`` and a text column that is not a feature."""
    return _example().gaussian_table(rows)


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory):
    """One `custom` trial through the CLI on local Ray: uconv, lambda 100, the quick budget (90
    epochs) on a 4,000-row Gaussian (3,200 rows trained on, 800 evaluated): about 15 s of training."""
    folder = tmp_path_factory.mktemp("custom")
    data = folder / "gauss.csv"
    pcsv.write_csv(gaussian_table(4000), data)
    store = folder / "store"
    proc = isosweep(
        "run",
        "custom",
        "--data",
        str(data),
        "--density-column",
        "p",
        "--budget",
        "quick",
        "--where",
        "loss=uconv,lam=100",
        "--store",
        str(store),
    )
    return data, store, proc


def test_custom_end_to_end_estimates_the_density(custom_run):
    """The metric-aware estimates follow the true density.

    Measured on this file (seed 0): corr_elbo_metric 0.981, corr_post_metric 0.944, against 0.789
    for the plain elbo (uconv's metric varies over the data, so the correction matters), with 3
    active dims of norm 0.96-1.03. The thresholds (0.85, and a gain of 0.1 over the plain elbo)
    leave room for the numerical differences of other platforms and torch builds, while a model
    that had not learnt the density (the smoke budget's 2 epochs give 0.2-0.6) fails them.
    """
    from isosweep.analysis.db import run_query
    from isosweep.analysis.queries import named_query

    data, store, proc = custom_run
    assert "custom-quick: ok 1, failed 0" in proc.stdout
    assert "elbo_metric" in proc.stdout  # the summary printed at the end
    result = run_query(
        str(store),
        "select status, n_active, corr_elbo, corr_elbo_metric, corr_post_metric, "
        "data_hash, features, density_column, dataset, latent_dim, hidden from trials",
    )
    (row,) = [dict(zip(result.columns, r)) for r in result.rows]
    assert row["status"] == "ok" and row["n_active"] == 3
    assert row["corr_elbo_metric"] >= 0.85 and row["corr_post_metric"] >= 0.85
    assert row["corr_elbo_metric"] >= row["corr_elbo"] + 0.1
    # Identity by content: the SHA-256 of the file's bytes, the columns used, the network sized to 3 features.
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    assert row["data_hash"] == digest and list(row["features"]) == ["x0", "x1", "x2"]
    assert row["density_column"] == "p" and row["dataset"] == "custom"
    assert row["latent_dim"] == 3 and list(row["hidden"]) == [128, 64]
    assert (store / "inputs" / digest).read_bytes() == data.read_bytes()
    norms = run_query(str(store), "select norm_mean from dims where active order by rank").rows
    assert len(norms) == 3 and all(0.8 <= n <= 1.25 for (n,) in norms)
    summary = run_query(str(store), f"select loss, lam, best_corr from ({named_query('custom_summary')})").rows
    assert summary == [("uconv", 100.0, pytest.approx(row["corr_elbo_metric"], abs=1e-3))]


def test_status_and_report_of_the_custom_study(custom_run, tmp_path, capsys):
    _, store, _ = custom_run
    assert main(["status", "--store", str(store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["custom", "quick", "1", "1", "0", "0", "0", "0"]
    assert main(["report", "custom", "--store", str(store), "--out", str(tmp_path / "report")]) == 0
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "Isometry and density estimation on your data" in markdown and "| uconv | 100 |" in markdown


def test_the_file_is_part_of_the_key_by_content_not_by_path(custom_run, tmp_path, capsys):
    data, store, _ = custom_run
    moved = tmp_path / "renamed-copy.csv"
    shutil.copyfile(data, moved)
    args = [
        "run",
        "custom",
        "--data",
        str(moved),
        "--density-column",
        "p",
        "--budget",
        "quick",
        "--where",
        "loss=uconv,lam=100",
        "--store",
        str(store),
        "--dry-run",
    ]
    assert main(args) == 0
    assert "1 already complete, 0 to run" in capsys.readouterr().out
    changed = tmp_path / "changed.csv"
    changed.write_bytes(data.read_bytes() + b"1.0,2.0,3.0,0.001,extra\n")
    args[3] = str(changed)
    assert main(args) == 0
    assert "0 already complete, 1 to run" in capsys.readouterr().out
    # Other feature columns make other trials too.
    args[3] = str(data)
    assert main([*args, "--features", "x0,x1"]) == 0
    assert "0 already complete, 1 to run" in capsys.readouterr().out


def test_parquet_files_and_default_features(tmp_path, capsys):
    data = tmp_path / "gauss.parquet"
    pq.write_table(gaussian_table(50), data)
    assert (
        main(
            ["run", "custom", "--data", str(data), "--density-column", "p", "--dry-run", "--store", str(tmp_path / "s")]
        )
        == 0
    )
    out = capsys.readouterr().out
    # Every numeric column but the density one; the text column is left out.
    assert "50 rows, 3 features (x0, x1, x2), density column 'p'" in out and "latent 3" in out
    assert "6 trials planned" in out  # smoke: 3 losses x lambda 10, 100
    assert (
        main(
            [
                "run",
                "custom",
                "--data",
                str(data),
                "--features",
                "x2,x0",
                "--latent-dim",
                "5",
                "--dry-run",
                "--store",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2 features (x2, x0), no density column" in out and "latent 5" in out
    assert not (tmp_path / "s").exists()


def test_split_is_deterministic_by_seed_and_disjoint():
    train, evaluation = split_rows(1000, 3, n_train=10_000, n_eval=10_000)
    again = split_rows(1000, 3, n_train=10_000, n_eval=10_000)
    assert np.array_equal(train, again[0]) and np.array_equal(evaluation, again[1])
    assert len(evaluation) == 200 and len(train) == 800
    assert not set(train) & set(evaluation)
    other = split_rows(1000, 4, n_train=10_000, n_eval=10_000)
    assert not np.array_equal(evaluation, other[1])
    capped = split_rows(1000, 3, n_train=100, n_eval=50)
    assert len(capped[0]) == 100 and len(capped[1]) == 50
    assert [len(part) for part in split_rows(2, 0, 10, 10)] == [1, 1]


def test_preparation_keeps_the_geometry_and_shifts_the_log_density():
    x = np.random.default_rng(0).normal(size=(500, 4)) * np.array([1.0, 2.0, 3.0, 4.0]) + 10.0
    log_p = np.zeros(500)
    y, log_q = prepare(x, log_p)
    assert np.allclose(y.mean(axis=0), 0.0) and y.var(axis=0).sum() == pytest.approx(TOTAL_VARIANCE)
    factor = y[1, 0] / (x[1, 0] - x[:, 0].mean())
    assert np.allclose(y, (x - x.mean(axis=0)) * factor)  # one common factor for every column
    assert np.allclose(log_q, -4 * np.log(factor))


def _write(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "case,extra,needle",
    [
        ("missing", [], "no such file"),
        ("folder", [], "is a folder"),
        ("empty", [], "is empty"),
        ("header_only", [], "has 0 row(s)"),
        ("one_row", [], "has 1 row(s)"),
        ("text_value", [], "column 'b' is not numeric (row 2 holds 'oops')"),
        ("nan", [], "column 'b' has 1 missing, NaN or infinite value(s) (first in row 2)"),
        ("blank", [], "column 'b' has 1 missing, NaN or infinite value(s) (first in row 3)"),
        ("good", ["--features", "a,zz"], "has no column(s) 'zz'"),
        ("good", ["--density-column", "dens"], "has no column 'dens' for --density-column"),
        ("good", ["--features", "a,,b"], "empty column name"),
        ("good", ["--features", "a,a"], "names 'a' twice"),
        ("good", ["--features", "a,p", "--density-column", "p"], "names the density column 'p'"),
        ("negative_density", ["--density-column", "p"], "density column 'p' is negative in row 2"),
        ("constant", [], "every feature column is constant"),
        ("only_text", [], "has no numeric column"),
        ("good", ["--data-root", "/tmp"], "--data-root does not apply"),
    ],
)
def test_bad_files_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, case, extra, needle):
    files = {
        "empty": "",
        "header_only": "a,b,p\n",
        "one_row": "a,b,p\n1,2,0.5\n",
        "text_value": "a,b,p\n1,2,0.5\n3,oops,0.5\n5,6,0.5\n",
        "nan": "a,b,p\n1,2,0.5\n3,NaN,0.5\n5,6,0.5\n",
        "blank": "a,b,p\n1,2,0.5\n3,4,0.5\n5,,0.5\n",
        "good": "a,b,p\n1,2,0.5\n3,4,0.5\n5,7,0.5\n",
        "negative_density": "a,b,p\n1,2,0.5\n3,4,-0.5\n5,7,0.5\n",
        "constant": "a,b\n1,2\n1,2\n1,2\n",
        "only_text": "a,b\nx,y\nz,w\n",
    }
    if case == "missing":
        data = str(tmp_path / "nope.csv")
    elif case == "folder":
        data = str(tmp_path)
    else:
        data = _write(tmp_path / f"{case}.csv", files[case])
    store = tmp_path / "store"
    code = main(["run", "custom", "--data", data, *extra, "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert not store.exists()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["run", "custom"], "pass --data FILE"),
        (["run", "toy", "--data", "x.csv"], "--data applies to studies that run on your own data"),
        (["run", "toy", "--latent-dim", "4"], "--latent-dim applies"),
        (["run", "custom", "--data", "x.csv", "--latent-dim", "0"], "must be at least 1"),
    ],
)
def test_custom_options_are_checked(tmp_path, capsys, args, needle):
    store = tmp_path / "store"
    assert main([*args, "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not store.exists()
