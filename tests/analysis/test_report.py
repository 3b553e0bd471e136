"""`isosweep report`: tables, figures, the HTML page, partial sweeps and bad input."""

from __future__ import annotations

import base64
import csv
import re
import struct
import uuid
from pathlib import Path

import fsspec
import pytest
from PIL import Image
from report_fixtures import (  # noqa: F401
    copy_subset,
    failed_key,
    partial_report,
    partial_store,
    relabel_trial,
    run_report,
    toy_report,
    trial_rows,
)

from isosweep.analysis.document import Document, Figure, Note, Section, Table, to_html, to_markdown
from isosweep.analysis.queries import planned_rows
from isosweep.analysis.report import build_document, check_out_dir
from isosweep.analysis.sections import SECTION_SETS, sections_for
from isosweep.analysis.sections.common import missing_summary, overview
from isosweep.analysis.sections.toy import DIM_COLUMNS
from isosweep.cli import main
from isosweep.errors import UsageError
from isosweep.schema import ESTIMATES
from isosweep.studies import STUDIES

DATASETS, LOSSES = ("norm", "ramp", "mix"), ("se", "dconv", "uconv")
TOY_FIGURES = {
    *(f"lambda_{d}_{lo}" for d in DATASETS for lo in LOSSES),
    "ratios_lambda100",
    "coding_loss",
    "transform_coding_ratio",
    *(f"scatter_{d}" for d in DATASETS),
}
TOY_TABLES = {"trials", *(f"dims_{d}" for d in DATASETS), "density_lambda100", "rate_distortion_lambda100"}


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# -- the whole smoke sweep --------------------------------------------------------------------------


def test_report_files(toy_report):
    assert (toy_report / "report.md").is_file() and (toy_report / "report.html").is_file()
    assert {p.stem for p in (toy_report / "figures").iterdir()} == TOY_FIGURES
    assert {p.stem for p in (toy_report / "tables").iterdir()} == TOY_TABLES


def test_tables_have_the_expected_rows_and_columns(toy_report):
    tables = toy_report / "tables"
    for dataset in DATASETS:
        columns, rows = read_csv(tables / f"dims_{dataset}.csv")
        assert tuple(columns) == DIM_COLUMNS
        assert [(r[0], r[1]) for r in rows] == [(lo, str(k)) for lo in LOSSES for k in (1, 2, 3)]
        assert all(float(r[columns.index("seeds")]) == 1 for r in rows)
        # Ratios are to the smallest active dimension: one of the active ranks has ratio 1.
        active = [r for r in rows if int(r[columns.index("active_seeds")]) > 0]
        for loss in {r[0] for r in active}:
            assert min(float(r[columns.index("var_ratio")]) for r in active if r[0] == loss) == pytest.approx(1.0)
    columns, rows = read_csv(tables / "density_lambda100.csv")
    assert columns == ["dataset", "loss", "seeds", *(f"corr_{e}" for e in ESTIMATES), *(f"rank_{e}" for e in ESTIMATES)]
    assert [(r[0], r[1]) for r in rows] == [(d, lo) for d in DATASETS for lo in LOSSES]
    assert all(-1 <= float(v) <= 1 for r in rows for v in r[3:])
    columns, rows = read_csv(tables / "rate_distortion_lambda100.csv")
    assert columns[:2] == ["dataset", "loss"] and "coding_theory" in columns and len(rows) == 9
    ratio_theory = columns.index("ratio_theory")
    assert all((r[ratio_theory] != "") == (r[1] == "se") for r in rows)
    assert float(rows[0][ratio_theory]) == pytest.approx(21 / 16 / 100)
    columns, rows = read_csv(tables / "trials.csv")
    assert columns == ["budget", "reduction", "lr_schedule", "status", "trials", "points"]
    assert rows == [["smoke", "sum", "step", "ok", "90", "90"]]


def test_figures_are_valid_pngs_of_sensible_size(toy_report):
    for path in (toy_report / "figures").iterdir():
        width, height = png_size(path.read_bytes())
        assert 800 <= width <= 2400 and 300 <= height <= 1600, (path.name, width, height)
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:  # not a blank canvas
            colours = image.convert("RGB").resize((200, 100)).getcolors(maxcolors=100_000)
            assert colours is not None and len(colours) > 20, path.name


def test_html_is_self_contained_and_embeds_every_figure_and_table(toy_report):
    page = (toy_report / "report.html").read_text()
    embedded = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    figures = {p.stem: p.read_bytes() for p in (toy_report / "figures").iterdir()}
    assert len(embedded) == len(figures)
    assert {base64.b64decode(e) for e in embedded} == set(figures.values())
    for name in TOY_TABLES:
        assert f'id="t-{name}"' in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from elsewhere
    markdown = (toy_report / "report.md").read_text()
    for name in figures:
        assert f"(figures/{name}.png)" in markdown
    for name in TOY_TABLES:
        assert f"(tables/{name}.csv)" in markdown
    assert "All 90 planned point(s)" in markdown and "Missing" not in markdown


# -- a partial sweep --------------------------------------------------------------------------------


@pytest.mark.slow  # a second report
def test_partial_report_names_what_is_missing(partial_report, failed_key):
    # Written without --out: to report-toy in the current folder.
    assert partial_report.out.name == "report-toy" and str(partial_report.out) in partial_report.stdout
    assert "note(s) on what is missing" in partial_report.stdout
    partial_report = partial_report.out
    markdown = (partial_report / "report.md").read_text()
    assert "**Missing:** 61 of 90 planned point(s) (dataset, loss, lam) have no ok trial at budget smoke" in markdown
    assert "dataset norm, loss se: every lam" in markdown and "dataset mix, loss uconv: lam 1000" in markdown
    assert "No ok trial with per-dimension rows at lambda 100 for (data set/loss): norm/se" in markdown
    assert "1 trial(s) failed or diverged" in markdown
    columns, rows = read_csv(partial_report / "tables" / "missing_points.csv")
    assert columns == ["dataset", "loss", "lam", "present", "statuses"]
    assert len(rows) == 61 and ["mix", "uconv", "1000.0", "1", "failed"] in rows
    columns, rows = read_csv(partial_report / "tables" / "failed_trials.csv")
    assert len(rows) == 1 and rows[0][columns.index("error")] == "RuntimeError: out of memory"
    figures = {p.stem for p in (partial_report / "figures").iterdir()}
    assert figures == {
        "lambda_mix_se",
        "lambda_mix_dconv",
        "lambda_mix_uconv",
        "ratios_lambda100",
        "coding_loss",
        "transform_coding_ratio",
        "scatter_mix",
    }
    assert {p.stem for p in (partial_report / "tables").iterdir()} >= {"dims_mix", "missing_points"}
    page = (partial_report / "report.html").read_text()
    assert page.count("<strong>Missing:</strong>") >= 3 and page.count("data:image/png;base64,") == len(figures)


@pytest.mark.slow  # a report from S3
def test_a_report_from_an_object_store(smoke_store, tmp_path):
    rows = trial_rows(smoke_store)
    keep = {r["trial_key"] for r in rows if r["dataset"] == "ramp" and r["loss"] == "se"}
    local = copy_subset(smoke_store, tmp_path / "subset", keep)
    # One trial of the latent-size-5 variant (a relabelled toy trial: the shape is what matters).
    mix_se_100 = next(r["trial_key"] for r in rows if (r["dataset"], r["loss"], r["lam"]) == ("mix", "se", 100.0))
    relabel_trial(smoke_store, local, mix_se_100, "5" * 16, "toy-latent5", latent_dim=5)
    url = f"memory://isosweep-report-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    for path in local.rglob("*.parquet"):
        fs.pipe_file(f"{url[len('memory://') :]}/{path.relative_to(local)}", path.read_bytes())
    doc, budget = build_document(url, "toy")
    assert budget == "smoke"
    assert {f.name for f in doc.figures()} == {
        "lambda_ramp_se",
        "ratios_lambda100",
        "coding_loss",
        "transform_coding_ratio",
        "scatter_ramp",
    }
    table = next(t for t in doc.tables() if t.name == "dims_ramp")
    assert [r[:2] for r in table.rows] == [("se", 1), ("se", 2), ("se", 3)]
    # The toy report shows table 4 when the variant's trials exist; the variant has a report of its own.
    assert doc.sections[-1].title.startswith("Study toy-latent5: ")
    assert [t.name for t in doc.sections[-1].blocks if isinstance(t, Table)] == ["latent5_dims_mix"]
    doc, _ = build_document(url, "toy-latent5")
    assert "paper table 4" in doc.sections[1].title
    assert {t.name for t in doc.tables()} == {"trials", "dims_mix", "density_lambda100"}
    assert {f.name for f in doc.figures()} == {"scatter_mix"}


def test_named_queries_run_by_name(smoke_store, capsys):
    rows = {
        "study_overview": 1,
        "missing_points": 0,
        "failed_trials": 0,
        "toy_dims": 270,
        "toy_corr": 90,
        "toy_rate_distortion": 90,
    }
    for name, expected in rows.items():
        assert main(["query", f"@{name}", "--store", str(smoke_store), "--format", "csv"]) == 0, name
        lines = capsys.readouterr().out.strip().splitlines()
        assert lines[0].startswith(("study,", "plan,")), name
        assert len(lines) == 1 + expected, name


def test_planned_grid_comes_from_the_registry():
    rows = planned_rows()
    toy = [r for r in rows if r[0] == "toy" and r[2] == "smoke"]
    assert len(toy) == len(STUDIES["toy"].configs("smoke", seeds=1)) == 90


def test_registry_views_are_read_by_any_query(smoke_store):
    """The registry's views are there for a query typed by hand as for a named one; a query's own
    table expression of the same name takes the view's place."""
    from isosweep.analysis.db import run_query

    assert run_query(str(smoke_store), "WITH x AS (SELECT 1) SELECT count(*) FROM planned, x").rows == [
        (len(planned_rows()),)
    ]
    assert run_query(str(smoke_store), "WITH planned AS (SELECT 7 AS n) SELECT n FROM planned").rows == [(7,)]
    counts = run_query(
        str(smoke_store),
        "SELECT (SELECT count(*) FROM studies WHERE plan = 'anomaly-paper'), "
        "(SELECT count(*) FROM paper_points), (SELECT count(*) FROM anomaly_trials)",
    ).rows
    assert counts == [(1, 4, 0)]  # the smoke store holds toy trials only


# -- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        "unknown study",
        "store is a file",
        "out under a file",
        "out is a file",
        "empty store",
        "unknown budget",
        "budget not in store",
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, smoke_store, tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    out = tmp_path / "out"
    args = {
        "unknown study": ["toys", "--store", str(smoke_store), "--out", str(out)],
        "store is a file": ["toy", "--store", str(a_file), "--out", str(out)],
        "out under a file": ["toy", "--store", str(smoke_store), "--out", str(a_file / "sub")],
        "out is a file": ["toy", "--store", str(smoke_store), "--out", str(a_file)],
        "empty store": ["toy", "--store", str(tmp_path / "nothing"), "--out", str(out)],
        "unknown budget": ["toy", "--store", str(smoke_store), "--out", str(out), "--budget", "huge"],
        "budget not in store": ["toy", "--store", str(smoke_store), "--out", str(out), "--budget", "paper"],
    }[case]
    assert run_report(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("isosweep: error: ") and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and a_file.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_unwritable_out_folder(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setattr("os.access", lambda path, mode: False)
    with pytest.raises(UsageError, match="not writable"):
        check_out_dir(locked / "report")


# -- the frame --------------------------------------------------------------------------------------


def test_every_study_has_a_report_that_starts_with_the_overview():
    for study in STUDIES.values():
        sections = sections_for(study)
        assert sections[0] is overview and len(sections) > 1, study.name
    assert {s.report for s in STUDIES.values()} == set(SECTION_SETS)


def test_markdown_and_html_of_a_small_document():
    png = b"\x89PNG\r\n\x1a\nfake"
    doc = Document(
        "T <1>",
        ["lead | line"],
        [
            Section(
                "S",
                [
                    Note("gone", warning=True),
                    Table("t", "cap", ("a", "b|c"), ((1.23456789, None), ("x<y", True))),
                    Figure("f", "fig & cap", png),
                ],
            )
        ],
    )
    md, page = to_markdown(doc), to_html(doc)
    assert "| a | b\\|c |" in md and "| 1.235 |  |" in md and "| x<y | yes |" in md
    assert "**Missing:** gone" in md and "![fig & cap](figures/f.png)" in md
    assert "T &lt;1&gt;" in page and "x&lt;y" in page and base64.b64encode(png).decode() in page


def test_missing_summary_groups_by_the_last_axis():
    import pandas as pd

    df = pd.DataFrame({"dataset": ["norm", "norm", "mix"], "lam": [1.0, 2.0, 100.0]})
    assert missing_summary(df, ["dataset", "lam"], (1.0, 2.0, 100.0)) == (
        "dataset norm: lam 1, 2; dataset mix: lam 100"
    )
    assert missing_summary(df.iloc[:2], ["dataset", "lam"], (1.0, 2.0)) == "dataset norm: every lam"
