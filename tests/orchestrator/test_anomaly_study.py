"""The anomaly studies: their grid, budgets and paper points, the data check before planning, and
the smoke grid end to end through the CLI on small generated files in the real formats."""

import json

import pytest
from anomaly_files import write_anomaly_files

from helpers import isosweep
from isosweep.cli import main
from isosweep.studies import ANOMALY_LAMBDAS, STUDIES
from isosweep.where import parse_where


def test_grid_axes_budgets_and_per_dataset_architecture():
    grid = STUDIES["anomaly"]
    assert grid.size() == 4 * 25 and grid.size("smoke") == 4 * 4
    assert len(grid.configs("paper")) == 100 * 20 and len(grid.configs("quick")) == 100 * 5
    configs = grid.configs("paper", seeds=1)
    assert {(c.lam1, c.lam2) for c in configs} == {(a, b) for a in ANOMALY_LAMBDAS for b in ANOMALY_LAMBDAS}
    by_set = {c.dataset: c for c in configs}
    assert by_set["thyroid"].hidden == (60, 30) and by_set["thyroid"].latent_dim == 6
    assert by_set["arrhythmia"].hidden == (200, 100) and by_set["arrhythmia"].latent_dim == 50
    assert by_set["kddcup"].latent_dim == 10 and by_set["kddcup"].transform_metric == "l2"
    assert by_set["kddcup_rev"].activation == "tanh" and by_set["kddcup_rev"].transform_metric == "se"
    assert {c.activation for c in configs if c.dataset != "kddcup_rev"} == {"leaky_relu"}
    assert {(c.form, c.loss, c.batch_size, c.lr, c.lr_schedule, c.snapshots, c.val_fraction) for c in configs} == {
        ("decomposed", "se", 1024, 1e-4, "constant", 10, 0.1)
    }
    epochs = {b: {c.dataset: c.epochs for c in grid.configs(b, seeds=1)} for b in ("quick", "paper")}
    assert epochs["paper"] == {"kddcup": 600, "kddcup_rev": 600, "thyroid": 40000, "arrhythmia": 30000}
    assert epochs["quick"]["thyroid"] == 4000 and epochs["quick"]["arrhythmia"] == 3000


def test_paper_points_are_trials_of_the_grid():
    paper = STUDIES["anomaly-paper"].configs("paper")
    assert len(paper) == 4 * 20
    assert {(c.dataset, c.lam1, c.lam2) for c in paper} == {
        ("kddcup", 30000.0, 6000.0),
        ("kddcup_rev", 30000.0, 6000.0),
        ("thyroid", 6000.0, 18000.0),
        ("arrhythmia", 6000.0, 24000.0),
    }
    grid_keys = {c.key for c in STUDIES["anomaly"].configs("paper")}
    assert {c.key for c in paper} <= grid_keys and {c.study for c in paper} == {"anomaly"}
    where = parse_where(STUDIES["anomaly"], "dataset=thyroid,lam1=6000,lam2=18000|24000")
    assert len(STUDIES["anomaly"].configs("quick", where=where)) == 2 * 5


def test_missing_data_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ISOSWEEP_DATA", raising=False)
    store = tmp_path / "store"
    for args, needle in [
        ([], "--data-root"),
        (["--data-root", str(tmp_path / "none")], "does not exist"),
        (["--data-root", str(tmp_path)], "thyroid/thyroid.mat: not found"),
    ]:
        code = main(["run", "anomaly-paper", "--where", "dataset=thyroid", "--store", str(store), *args])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not store.exists()
    (tmp_path / "thyroid").mkdir()
    (tmp_path / "thyroid" / "thyroid.mat").write_text("not a mat file")
    assert (
        main(["run", "anomaly", "--where", "dataset=thyroid", "--data-root", str(tmp_path), "--store", str(store)]) == 2
    )
    assert "thyroid.mat: not a readable .mat file" in capsys.readouterr().err
    assert not store.exists()


@pytest.fixture(scope="module")
def anomaly_store(tmp_path_factory):
    root = write_anomaly_files(tmp_path_factory.mktemp("anomaly-data"))
    store = tmp_path_factory.mktemp("anomaly") / "store"
    proc = isosweep("run", "anomaly", "--budget", "smoke", "--data-root", str(root), "--store", str(store))
    return root, store, proc


@pytest.mark.slow  # a Ray sweep of 16 trials (anomaly_store); the anomaly trainers run in process in tests/trainers
def test_smoke_grid_end_to_end(anomaly_store):
    root, store, proc = anomaly_store
    assert "ok 16, failed 0, diverged 0, missing 0 of 16" in proc.stdout
    out = isosweep(
        "query",
        "select count(*) as n, count(*) filter (where status = 'ok' and f1 between 0 and 1 "
        "and val_f1 is not null and baseline_f1 is not null and snapshot_epoch = 2) as good, "
        "count(distinct dataset) as sets from trials",
        "--store",
        str(store),
        "--format",
        "json",
    ).stdout
    assert json.loads(out) == {"n": 16, "good": 16, "sets": 4}
    curves = isosweep(
        "query", "select count(*) as n, count(f1) as f1 from curves", "--store", str(store), "--format", "json"
    ).stdout
    assert json.loads(curves) == {"n": 32, "f1": 32}
    summary = [
        json.loads(line)
        for line in isosweep("query", "@anomaly_summary", "--store", str(store), "--format", "json").stdout.splitlines()
    ]
    # kddcup and kddcup_rev have their paper point (30000, 6000) in the smoke grid; each data set has a best point.
    assert sorted((r["dataset"], r["point"]) for r in summary) == sorted(
        [(d, "best validation F1") for d in ("kddcup", "kddcup_rev", "thyroid", "arrhythmia")]
        + [("kddcup", "paper point"), ("kddcup_rev", "paper point")]
    )
    assert {r["paper_f1_cited"] for r in summary} == {0.964, 0.988, 0.66, 0.5}
    for query, rows in (("@anomaly_grid", 16), ("@anomaly_snapshots", 16 * 2), ("@anomaly_selection", 16 * 4)):
        out = isosweep("query", query, "--store", str(store), "--format", "csv").stdout.splitlines()
        assert len(out) == 1 + rows, query
    # The paper points already run as part of the grid are not run again.
    again = isosweep(
        "run", "anomaly-paper", "--budget", "smoke", "--data-root", str(root), "--store", str(store), "--dry-run"
    ).stdout
    assert "4 trials planned, 2 already complete, 2 to run" in again


@pytest.mark.slow  # anomaly_store
def test_report_has_the_summary_and_one_heatmap_per_data_set(anomaly_store, tmp_path):
    import csv

    _, store, _ = anomaly_store
    out = tmp_path / "report"
    isosweep("report", "anomaly", "--store", str(store), "--out", str(out))
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == [f"f1_heatmap_{d}.png" for d in sorted(("kddcup", "kddcup_rev", "thyroid", "arrhythmia"))]
    assert all((out / "figures" / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in figures)
    with open(out / "tables" / "anomaly_summary.csv") as f:
        summary = list(csv.DictReader(f))
    best = {r["dataset"]: r for r in summary if r["point"] == "best validation F1"}
    assert len(best) == 4 and {r["grid_points_compared"] for r in best.values()} == {"4"}
    grid = [
        json.loads(line)
        for line in isosweep("query", "@anomaly_grid", "--store", str(store), "--format", "json").stdout.splitlines()
    ]
    for dataset, row in best.items():
        top = max(g["val_f1"] for g in grid if g["dataset"] == dataset)
        assert abs(float(row["val_f1"]) - top) < 1e-3  # chosen on validation F1, never on test F1
    text = (out / "report.md").read_text()
    assert "F1 over the (lambda1, lambda2) grid" in text
    # One seed has no interval; the note names the seed count of each paper point it covers.
    assert "for kddcup (1 seed); kddcup_rev (1 seed): a difference" in text


def test_settings_cross_like_axes_and_bad_ones_are_one_line(tmp_path, capsys):
    study = STUDIES["anomaly-paper"]
    where = parse_where(
        study, "dataset=thyroid,scaling=all_rows|train_half,snapshot_rule=val_loss|val_f1|last,epochs=9"
    )
    configs = study.configs("smoke", seeds=2, where=where)
    assert len(configs) == 2 * 3 * 2 and len({c.key for c in configs}) == 12
    assert {(c.scaling, c.snapshot_rule) for c in configs} == {
        (s, r) for s in (None, "train_half") for r in (None, "val_f1", "last")
    }
    assert {c.epochs for c in configs} == {9}
    # The snapshot count is a setting too; members that stop at other epochs never share a bundle.
    counted = study.configs("paper", seeds=1, where=parse_where(study, "dataset=kddcup,snapshots=10|100"))
    assert [c.snapshots for c in counted] == [10, 100] and counted[0].key == study.configs(
        "paper", seeds=1, where=parse_where(study, "dataset=kddcup")
    )[0].key
    assert counted[0].fusion_key() != counted[1].fusion_key()
    # The defaults named explicitly are the plan's own trials.
    plain = study.configs("smoke", seeds=2, where=parse_where(study, "dataset=thyroid"))
    named = study.configs("smoke", seeds=2, where=parse_where(study, "dataset=thyroid,score=lx,split=held_out"))
    assert [c.key for c in named] == [c.key for c in plain]
    for text, needle in [
        ("scaling=minmax", "choose one of all_rows, train_half"),
        ("epochs=0", "epochs must be at least 1"),
        ("epochs=many", "takes whole numbers"),
        ("snapshots=0", "snapshots must be at least 1"),
        ("epochs=4000000000", "epochs must be at most 2,147,483,647"),
        ("split=paper", "set snapshot_rule to 'last'"),
    ]:
        store = tmp_path / "never"
        assert (
            main(
                [
                    "run",
                    "anomaly-paper",
                    "--where",
                    f"dataset=thyroid,{text}",
                    "--store",
                    str(store),
                    "--data-root",
                    str(tmp_path),
                    "--dry-run",
                ]
            )
            == 2
        )
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1, err
        assert not store.exists()
    # Settings of the anomaly trial are not settings of other studies.
    assert main(["run", "toy", "--where", "snapshot_rule=last", "--dry-run"]) == 2
    assert "not an axis of study 'toy'" in capsys.readouterr().err


@pytest.mark.slow  # Ray sweeps of every recorded setting
def test_recorded_settings_run_end_to_end_and_compare_paired_by_seed(tmp_path):
    """Settings trials go to the store with their columns; the paper's tables keep to the default
    trials; @anomaly_ablation pairs each setting with the default by seed; and a trial run with a
    snapshot rule, the planned one (best validation F1) included, gets the F1 that
    @anomaly_selection reads off the snapshots for that rule. The data root is given relative to the
    working folder, as a user types it."""
    import os
    import subprocess
    import sys

    root = write_anomaly_files(tmp_path / "data")
    store = tmp_path / "store"
    exe = os.path.join(os.path.dirname(sys.executable), "isosweep")
    from helpers import cli_env

    proc = subprocess.run(
        [
            exe,
            "run",
            "anomaly-paper",
            "--budget",
            "smoke",
            "--seeds",
            "2",
            "--where",
            "dataset=thyroid,snapshot_rule=val_loss|val_f1|last,scaling=all_rows|train_half,epochs=6",
            "--data-root",
            os.path.relpath(root, tmp_path),
            "--store",
            "store",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ok 12, failed 0, diverged 0, missing 0 of 12" in proc.stdout

    def rows(query: str) -> list[dict]:
        out = isosweep("query", query, "--store", str(store), "--format", "json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    counts = rows("select scaling, snapshot_rule, count(*) as n from trials group by all order by all")
    assert {(r["scaling"], r["snapshot_rule"]): r["n"] for r in counts} == {
        (s, r): 2 for s in (None, "train_half") for r in (None, "val_f1", "last")
    }
    ablation = {r["settings"]: r for r in rows("@anomaly_ablation")}
    # The plan keeps the best validation F1: the other rules are named, val_loss included.
    assert set(ablation) == {
        "epochs=6",
        "snapshot_rule=val_loss, epochs=6",
        "snapshot_rule=last, epochs=6",
        "scaling=train_half, epochs=6",
        "snapshot_rule=val_loss, scaling=train_half, epochs=6",
        "snapshot_rule=last, scaling=train_half, epochs=6",
    }
    # No trial here has the plan's epochs, so none is `default`: nothing to pair with, and the
    # paper's tables stay empty rather than mix settings.
    assert all(r["pairs"] is None for r in ablation.values())
    assert rows("@anomaly_summary") == [] and rows("@anomaly_selection") == []

    # The same at the plan's epochs: now the default trials exist and the others pair with them.
    isosweep(
        "run",
        "anomaly-paper",
        "--budget",
        "smoke",
        "--seeds",
        "2",
        "--where",
        "dataset=thyroid,snapshot_rule=val_loss|val_f1|last,scaling=all_rows|train_half",
        "--data-root",
        str(root),
        "--store",
        str(store),
    )
    ablation = {r["settings"]: r for r in rows("@anomaly_ablation") if "epochs" not in r["settings"]}
    assert ablation["default"]["seeds"] == 2 and ablation["default"]["pairs"] is None
    assert {r["pairs"] for s, r in ablation.items() if s != "default"} == {2}
    # Each setting is compared with the trials that differ from it in that setting alone.
    assert {s: r["reference"] for s, r in ablation.items()} == {
        "default": None,
        "snapshot_rule=val_loss": "default",
        "snapshot_rule=last": "default",
        "scaling=train_half": "default",
        "snapshot_rule=val_loss, scaling=train_half": "snapshot_rule=val_loss",
        "snapshot_rule=last, scaling=train_half": "snapshot_rule=last",
    }
    f1 = {
        (r["scaling"], r["snapshot_rule"], r["seed"]): r["f1"]
        for r in rows("select scaling, snapshot_rule, seed, f1 from trials where epochs <> 6")
    }
    assert ablation["snapshot_rule=last, scaling=train_half"]["f1_minus_reference"] == pytest.approx(
        sum(f1["train_half", "last", k] - f1[None, "last", k] for k in (0, 1)) / 2, abs=1e-4
    )
    assert ablation["default"]["f1"] == pytest.approx(
        next(r["f1_mean"] for r in rows("@anomaly_summary") if r["point"] == "paper point"), abs=1e-4
    )
    assert next(r["seeds"] for r in rows("@anomaly_summary") if r["point"] == "paper point") == 2
    # Each seed's three rule trials trained alike: the selection counts one of them per seed.
    selection = {r["rule"]: r for r in rows("@anomaly_selection")}
    assert {r["seeds"] for r in selection.values()} == {2}
    assert ablation["default"]["f1"] == pytest.approx(selection["best validation F1"]["f1"], abs=1e-4)
    assert ablation["snapshot_rule=val_loss"]["f1"] == pytest.approx(
        selection["lowest validation loss"]["f1"], abs=1e-4
    )
    assert ablation["snapshot_rule=last"]["f1"] == pytest.approx(selection["last"]["f1"], abs=1e-4)
