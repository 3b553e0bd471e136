"""The image bottleneck studies (docs/method.md 5.2): variants that move latent size, width and lambda
together, the budgets, bad data paths refused before anything runs, artifacts written before the
trials file, and the smoke runs of both studies end to end through the CLI on small generated files
in the real formats, with their report sections."""

import json

import pytest
from image_files import write_celeba, write_mnist

from helpers import isosweep
from isosweep.cli import main
from isosweep.store import Store
from isosweep.studies import STUDIES
from isosweep.trainers.config import TrialConfig
from isosweep.where import parse_where


def test_variants_are_pairs_not_a_cross_product():
    mnist = STUDIES["mnist"].configs("paper")
    assert [(c.latent_dim, c.lam, c.form, c.loss, c.arch) for c in mnist] == [
        (32, 2000.0, "conventional", "bce", "mlp_sigmoid"),
        (64, 10000.0, "conventional", "bce", "mlp_sigmoid"),
    ]
    assert {(c.iterations, c.batch_size, c.lr, c.hidden, c.activation) for c in mnist} == {
        (50_000, 256, 1e-3, (1024, 1024), "relu")
    }
    celeba = STUDIES["celeba"].configs("paper")
    assert [(c.latent_dim, c.hidden, c.form, c.lam, c.lam1, c.lam2) for c in celeba] == [
        (32, (1024,), "conventional", 1000.0, None, None),
        (32, (1024,), "decomposed", None, 1000.0, 1000.0),
        (256, (2048,), "conventional", 10000.0, None, None),
        (256, (2048,), "decomposed", None, 10000.0, 10000.0),
    ]
    assert {(c.iterations, c.batch_size, c.lr, c.loss, c.arch) for c in celeba} == {
        (300_000, 64, 1e-3, "ssim", "conv_gdn")
    }
    # Keys are content-based: the same fields give the same key, whatever the variant was called.
    c = celeba[1]
    assert c.key == TrialConfig.from_dict(c.to_dict()).key
    assert len({c.key for c in celeba}) == 4 and "variant" not in c.to_dict()
    where = parse_where(STUDIES["celeba"], "variant=n256,form=decomposed")
    (only,) = STUDIES["celeba"].configs("smoke", where=where)
    assert (only.latent_dim, only.lam1, only.iterations) == (256, 10000.0, 4)


def test_new_fields_leave_the_other_studies_keys_alone():
    toy = STUDIES["toy"].configs("smoke")[0]
    assert toy.iterations is None and toy.arch is None
    assert "iterations" not in json.dumps({k: v for k, v in toy.to_dict().items() if v is not None})


@pytest.mark.parametrize(
    "study, layout", [("mnist", "mnist/t10k-images-idx3-ubyte"), ("celeba", "celeba/img_align_celeba")]
)
def test_bad_data_paths_are_refused_in_one_line_with_nothing_written(tmp_path, capsys, monkeypatch, study, layout):
    monkeypatch.delenv("ISOSWEEP_DATA", raising=False)
    store = tmp_path / "store"
    partial = tmp_path / "partial"
    if study == "mnist":
        write_mnist(partial)
        (partial / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    else:
        (partial / "celeba" / "img_align_celeba").mkdir(parents=True)
    for args, needle in [
        ([], "--data-root"),
        (["--data-root", str(tmp_path / "none")], "not"),
        (["--data-root", str(partial)], layout),
    ]:
        code = main(["run", study, "--budget", "smoke", "--store", str(store), *args])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not store.exists()


def test_artifacts_are_written_before_the_trials_file(tmp_path):
    from datetime import datetime, timezone

    from isosweep.trainers.records import TrialResult, TrialStatus

    cfg = STUDIES["mnist"].configs("smoke")[0]
    now = datetime.now(timezone.utc)
    order = []
    store = Store(str(tmp_path / "store"), before_commit=order.append)
    store.write_result(TrialResult(cfg, TrialStatus.OK, now, now, artifacts={"traversal.png": b"png"}), "s", {})
    assert order[0].endswith(f"artifacts/{cfg.key}/traversal.png") and "/trials/" in order[-1]
    assert store.read_artifact(cfg.key, "traversal.png") == b"png" and store.read_artifact(cfg.key, "x.png") is None
    with pytest.raises(ValueError):
        store.artifact_path(cfg.key, "../escape")


def _smoke(tmp_path_factory, study, write):
    root = write(tmp_path_factory.mktemp(f"{study}-data"))
    store = tmp_path_factory.mktemp(study) / "store"
    proc = isosweep("run", study, "--budget", "smoke", "--data-root", str(root), "--store", str(store))
    return store, proc


def _query(store, sql):
    out = isosweep("query", sql, "--store", str(store), "--format", "json").stdout
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture(scope="module")
def mnist_store(tmp_path_factory):
    return _smoke(tmp_path_factory, "mnist", write_mnist)


@pytest.fixture(scope="module")
def celeba_store(tmp_path_factory):
    return _smoke(tmp_path_factory, "celeba", lambda d: write_celeba(d, n=30))


@pytest.mark.slow  # Ray sweeps of both studies; tests/trainers/test_image.py trains an image trial in process
@pytest.mark.parametrize("fixture, trials, dims", [("mnist_store", 2, 32 + 64), ("celeba_store", 4, 2 * (32 + 256))])
def test_smoke_run_end_to_end(request, fixture, trials, dims):
    store, proc = request.getfixturevalue(fixture)
    assert f"ok {trials}, failed 0, diverged 0, missing 0 of {trials}" in proc.stdout
    # No --gpus-per-trial: an image study asks for a GPU only where the cluster has one (none here).
    assert "0 GPU per trial (0 GPU(s) in the Ray cluster" in proc.stdout
    summary = proc.stdout.split(f"missing 0 of {trials}", 1)[1]  # the run's closing @image_summary table
    assert "n_active" in summary and "norm_active" in summary and f"({trials} rows)" in summary
    (row,) = _query(
        store,
        "select count(*) as n, count(*) filter (where status = 'ok' and steps = iterations "
        "and n_test > 0 and transform_loss > 0 and arch is not null) as good, "
        "(select count(*) from dims) as dims, (select count(*) from curves) as curves from trials",
    )
    assert row["n"] == row["good"] == trials and row["dims"] == dims and row["curves"] > trials
    keys = [r["trial_key"] for r in _query(store, "select trial_key from trials")]
    for key in keys:
        png = Store(str(store)).read_artifact(key, "traversal.png")
        assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # the Ray sweeps of test_smoke_run_end_to_end
@pytest.mark.parametrize("fixture, study, trials", [("mnist_store", "mnist", 2), ("celeba_store", "celeba", 4)])
def test_report_shows_bars_norms_and_traversals_per_trial(request, tmp_path, fixture, study, trials):
    store, _ = request.getfixturevalue(fixture)
    out = tmp_path / "report"
    isosweep("report", study, "--store", str(store), "--out", str(out))
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert len(figures) == trials and all(name.startswith("bottleneck_") for name in figures)
    html = (out / "report.html").read_text()
    assert "Bottleneck summary" in html and "traversal" in html and "Missing:" not in html
    rows = (out / "tables" / "image_summary.csv").read_text().splitlines()
    assert len(rows) == 1 + trials


def test_gpus_per_trial_default_follows_the_cluster():
    from isosweep.orchestrator.options import gpus_for_trials

    assert gpus_for_trials(None, {"CPU": 16.0, "GPU": 4.0}) == 1.0
    assert gpus_for_trials(None, {"CPU": 2.0}) == 0.0
    assert gpus_for_trials(0.25, {"CPU": 2.0}) == 0.25  # as given, even where the cluster has none
