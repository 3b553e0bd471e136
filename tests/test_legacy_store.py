"""A store written by an earlier release reads the same today.

``tests/fixtures/legacy-store`` was written by isosweep 0.1.0 before the package became one
``isosweep`` namespace (toy, toy-latent5, anomaly, anomaly-paper, mnist and custom trials at the
smoke budget, compacted), and ``tests/fixtures/legacy-expected`` holds what that release answered
over it: ``isosweep status``, every named query and every table as CSV, and every report's tables
(``tests/fixtures/make_legacy_store.sh`` wrote both). Today's commands must answer the same. The
store's schema may gain columns and a report may gain tables (``isosweep.schema``): the columns
and tables that release had must read exactly as they did.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from isosweep.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPECTED = FIXTURES / "legacy-expected"


@pytest.fixture(scope="module")
def legacy_store(tmp_path_factory) -> Path:
    """A copy of the fixture store, so that nothing a command might write could change the fixture."""
    store = tmp_path_factory.mktemp("legacy") / "store"
    shutil.copytree(FIXTURES / "legacy-store", store)
    return store


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_status_is_the_same(legacy_store, capsys):
    assert main(["status", "--store", str(legacy_store)]) == 0
    assert capsys.readouterr().out == (EXPECTED / "status.txt").read_text()


@pytest.mark.parametrize("expected", sorted(p.name for p in EXPECTED.glob("*.csv")))
def test_every_query_and_table_is_the_same(expected, legacy_store, tmp_path):
    name = expected[: -len(".csv")]
    kind, _, what = name.partition("-")
    # A table is compared over the columns the release had (its header): columns added since are
    # new, null over these old rows, and last, so they change neither the values nor the order.
    header = (EXPECTED / expected).read_text().splitlines()[0]
    sql = f"@{what}" if kind == "query" else f"select {header} from {what} order by all"
    out = tmp_path / expected
    assert main(["query", sql, "--store", str(legacy_store), "--format", "csv", "--out", str(out)]) == 0
    assert out.read_text() == (EXPECTED / expected).read_text()


@pytest.mark.parametrize("study", sorted(p.name[len("report-"):] for p in EXPECTED.glob("report-*")))
def test_every_report_table_is_the_same(study, legacy_store, tmp_path):
    before = _snapshot(legacy_store)
    out = tmp_path / "report"
    assert main(["report", study, "--store", str(legacy_store), "--out", str(out)]) == 0
    expected = EXPECTED / f"report-{study}"
    tables = {p.name for p in (out / "tables").glob("*.csv")}
    assert {p.name for p in expected.glob("*.csv")} <= tables
    for table in expected.glob("*.csv"):
        assert (out / "tables" / table.name).read_text() == table.read_text(), table.name
    assert _snapshot(legacy_store) == before  # reading wrote nothing into the store
