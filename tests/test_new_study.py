"""A study declared once, in the registry only, runs end to end: run, query and report know it
without a line of isosweep changed (README, "Adding a study")."""

from __future__ import annotations

import csv

import pytest

from isosweep.analysis.db import run_query
from isosweep.analysis.queries import named_query
from isosweep.cli import main
from isosweep.studies import STUDIES, TOY_BUDGETS, Axis, Study, register_study, unregister_study

NAME = "toy-pair"


@pytest.fixture
def toy_pair():
    """A toy-like study that exists only inside this test: mix x se x 2 lambdas, latent size 2."""
    study = Study(
        NAME,
        "a toy-like study registered by a test: mix, se, lambda 10 and 100, latent size 2",
        (Axis("dataset", ("mix",)), Axis("loss", ("se",)), Axis("lam", (10.0, 100.0), float)),
        {**STUDIES["toy"].fixed, "latent_dim": 2},
        TOY_BUDGETS,
        summary="toy_summary",
        report="toy",
    )
    register_study(study)
    try:
        yield study
    finally:
        unregister_study(NAME)
        import ray

        ray.shutdown()  # the run below started a local Ray in this process


@pytest.mark.slow  # a Ray sweep
def test_a_registered_study_runs_and_is_queried_and_reported(toy_pair, tmp_path, capsys):
    store = str(tmp_path / "store")
    assert main(["studies"]) == 0
    assert f"{NAME}: a toy-like study" in capsys.readouterr().out

    assert main(["run", NAME, "--budget", "smoke", "--store", store]) == 0
    out = capsys.readouterr().out
    assert f"{NAME}-smoke: ok 2, failed 0, diverged 0, missing 0 of 2" in out
    # The closing summary is the study's own (toy_summary), one row per lambda.
    assert "(2 rows)" in out.splitlines()[-1]

    rows = run_query(store, "select study, dataset, loss, lam, latent_dim, status from trials order by lam").rows
    assert rows == [(NAME, "mix", "se", 10.0, 2, "ok"), (NAME, "mix", "se", 100.0, 2, "ok")]
    summary = run_query(store, f"select study, lam from ({named_query('toy_summary')}) order by lam").rows
    assert summary == [(NAME, 10.0), (NAME, 100.0)]
    missing = run_query(store, f"select count(*) from ({named_query('missing_points')}) where plan = ?", [NAME]).rows
    assert missing == [(0,)]

    report = tmp_path / "report"
    assert main(["report", NAME, "--store", store, "--out", str(report)]) == 0
    with open(report / "tables" / "dims_mix.csv") as f:
        dims = list(csv.DictReader(f))
    assert [row["rank"] for row in dims] == ["1", "2"]  # both latent dims of the lambda-100 trial
    assert f"# isosweep report: {NAME} (smoke)" in (report / "report.md").read_text()

    # A second run finds both keys complete and trains nothing.
    assert main(["run", NAME, "--budget", "smoke", "--store", store, "--dry-run"]) == 0
    assert "2 already complete, 0 to run" in capsys.readouterr().out


def test_registering_twice_or_naming_an_unknown_study_is_refused(toy_pair):
    with pytest.raises(ValueError, match="already registered"):
        register_study(toy_pair)
    with pytest.raises(ValueError, match="not registered"):
        register_study(Study("orphan", "d", (), {}, TOY_BUDGETS, companions=("nowhere",)))


def test_the_registry_views_are_built_once_and_again_when_the_registry_changes():
    from isosweep.analysis.queries import registry_views

    before = registry_views()
    assert registry_views() is before  # a report's many connections share one build
    assert f"'{NAME}'" not in before["studies"]
    study = Study(
        NAME,
        "a study registered by a test",
        (Axis("dataset", ("mix",)),),
        {**STUDIES["toy"].fixed, "loss": "se", "lam": 10.0, "latent_dim": 2},
        TOY_BUDGETS,
    )
    register_study(study)
    try:
        views = registry_views()
        assert f"'{NAME}'" in views["studies"] and f"'{NAME}'" in views["planned"]
    finally:
        unregister_study(NAME)
    assert f"'{NAME}'" not in registry_views()["studies"]
