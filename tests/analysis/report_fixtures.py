"""Fixtures and helpers of the report tests: reports over the session's smoke store, and stores
derived from it (a partial sweep). Test modules import the fixtures they use from here."""

from __future__ import annotations

import contextlib
import glob
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from isosweep.cli import main
from isosweep.schema import TABLES


def trial_rows(store: Path) -> list[dict]:
    """Every trials row of a local store (key, data set, loss, lambda, status)."""
    rows = []
    for path in glob.glob(str(store / "trials" / "*" / "*.parquet")):
        rows += pq.read_table(path, columns=["trial_key", "study", "dataset", "loss", "lam", "status"]).to_pylist()
    return rows


def copy_subset(
    src: Path,
    dst: Path,
    keep: set[str],
    edit_trials: Callable[[pa.Table], pa.Table] | None = None,
    drop_results: frozenset = frozenset(),
) -> Path:
    """A copy of the store ``src`` with the trials ``keep`` only, one file per source file.

    ``edit_trials`` may rewrite each kept trials table; trials in ``drop_results`` keep their
    trials row but lose their dims, curves and points rows (as a failed trial has none).
    """
    for table in TABLES:
        for path in glob.glob(str(src / table / "*" / "*.parquet")):
            data = pq.read_table(path)
            data = data.filter(pc.is_in(data["trial_key"], pa.array(sorted(keep))))
            if table != "trials" and drop_results:
                data = data.filter(pc.invert(pc.is_in(data["trial_key"], pa.array(sorted(drop_results)))))
            if table == "trials" and edit_trials is not None:
                data = edit_trials(data)
            if data.num_rows == 0:
                continue
            out = dst / os.path.relpath(path, src)
            out.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(data, out)
    return dst


def relabel_trial(src: Path, dst: Path, key: str, new_key: str, study: str, **edits: object) -> None:
    """Copy one trial of ``src`` into ``dst`` as trial ``new_key`` of ``study``, its trials row edited."""
    for table in TABLES:
        for path in glob.glob(str(src / table / "*" / "*.parquet")):
            data = pq.read_table(path)
            data = data.filter(pc.equal(data["trial_key"], key))
            if data.num_rows == 0:
                continue
            columns = {"trial_key": new_key, "study": study, **(edits if table == "trials" else {})}
            for name, value in columns.items():
                i = data.schema.get_field_index(name)
                data = data.set_column(i, name, pa.array([value] * data.num_rows, data.schema.field(i).type))
            out = dst / table / f"study={study}" / f"{new_key}.parquet"
            out.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(data, out)


def run_report(*args: str) -> int:
    return main(["report", *args])


@pytest.fixture(scope="session")
def toy_report(smoke_store, tmp_path_factory) -> Path:
    """The toy report of the whole smoke sweep, written through the CLI."""
    out = tmp_path_factory.mktemp("report") / "toy-report"
    assert run_report("toy", "--store", str(smoke_store), "--out", str(out)) == 0
    return out


@pytest.fixture(scope="session")
def failed_key(smoke_store) -> str:
    """The trial that the partial store records as failed: mix, uconv, lambda 1000."""
    return next(
        r["trial_key"]
        for r in trial_rows(smoke_store)
        if r["dataset"] == "mix" and r["loss"] == "uconv" and r["lam"] == 1000.0
    )


@pytest.fixture(scope="session")
def partial_store(smoke_store, failed_key, tmp_path_factory) -> Path:
    """A partial sweep: the mix data set only, and one of its trials failed."""
    keep = {r["trial_key"] for r in trial_rows(smoke_store) if r["dataset"] == "mix"}

    def fail(table: pa.Table) -> pa.Table:
        failed = pc.equal(table["trial_key"], failed_key)
        status = pc.if_else(failed, pa.scalar("failed"), table["status"])
        error = pc.if_else(failed, pa.scalar("RuntimeError: out of memory\nTraceback ..."), table["error"])
        table = table.set_column(table.schema.get_field_index("status"), "status", status)
        return table.set_column(table.schema.get_field_index("error"), "error", error)

    return copy_subset(smoke_store, tmp_path_factory.mktemp("partial") / "store", keep, fail, frozenset({failed_key}))


@dataclass(frozen=True)
class CliRun:
    out: Path
    stdout: str


@pytest.fixture(scope="session")
def partial_report(partial_store, tmp_path_factory) -> CliRun:
    """The toy report of the partial sweep, written without --out (so to ./report-toy)."""
    cwd = tmp_path_factory.mktemp("partial-report")
    before, buf = os.getcwd(), io.StringIO()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(buf):
            assert run_report("toy", "--store", str(partial_store)) == 0
    finally:
        os.chdir(before)
    return CliRun(cwd / "report-toy", buf.getvalue())
