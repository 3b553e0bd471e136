"""The Python API (``import isosweep``) over real stores: the toy study at the smoke budget on a
local folder (fixture ``smoke_store``), and a small sweep on a real S3-compatible server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

import duckdb
import pytest

import isosweep
from helpers import REPO, cli_env
from helpers import isosweep as run_cli

TOY_TRIALS = 90  # 3 data sets x 3 losses x 10 lambdas, one seed at the smoke budget


# -- trials --------------------------------------------------------------------------------------


def test_trials_is_the_view_with_one_row_per_trial(smoke_store: Path) -> None:
    df = isosweep.trials(smoke_store)
    assert len(df) == TOY_TRIALS
    assert df["trial_key"].is_unique and list(df["trial_key"]) == sorted(df["trial_key"])
    assert set(df["status"]) == {"ok"}
    assert set(df["dataset"]) == {"norm", "ramp", "mix"} and set(df["loss"]) == {"se", "dconv", "uconv"}
    # The same rows as the view itself, column for column, whether the store is a str or a path.
    con = isosweep.connect(str(smoke_store))
    assert list(df.columns) == [d[0] for d in con.execute("select * from trials limit 0").description]
    assert con.execute("select count(*) from trials").fetchone() == (TOY_TRIALS,)
    assert isosweep.trials(str(smoke_store)).equals(df)


def test_trials_filters_equal_in_and_null(smoke_store: Path) -> None:
    mix = isosweep.trials(smoke_store, dataset="mix")
    assert len(mix) == 30 and set(mix["dataset"]) == {"mix"}
    two = isosweep.trials(smoke_store, dataset="mix", loss=["se", "uconv"])
    assert len(two) == 20 and set(two["loss"]) == {"se", "uconv"}
    assert isosweep.trials(smoke_store, dataset="mix", loss=("se", "uconv")).equals(two)
    assert isosweep.trials(smoke_store, dataset="mix", loss={"se", "uconv"}).equals(two)
    at_100 = isosweep.trials(smoke_store, lam=100)
    assert len(at_100) == 9 and set(at_100["lam"]) == {100.0}
    assert len(isosweep.trials(smoke_store, lam=[10.0, 100.0], loss="dconv")) == 6
    assert len(isosweep.trials(smoke_store, error=None)) == TOY_TRIALS  # no trial failed
    assert len(isosweep.trials(smoke_store, status=None)) == 0
    assert len(isosweep.trials(smoke_store, lam1=None, dataset="norm")) == 30  # toy trials have no lambda1
    assert len(isosweep.trials(smoke_store, dataset=["mix", None])) == 30
    assert len(isosweep.trials(smoke_store, dataset=[])) == 0
    # Values are parameters, not SQL: a quote in one matches nothing and breaks nothing.
    assert len(isosweep.trials(smoke_store, dataset="mix' OR '1'='1")) == 0


def test_unknown_column_names_the_known_ones(smoke_store: Path) -> None:
    with pytest.raises(
        isosweep.UsageError,
        match=r"no column 'lamda' \(did you mean 'lam'\?\); trials has: "
        r"trial_key, study, run_id, .*dataset, loss",
    ):
        isosweep.trials(smoke_store, lamda=100)
    with pytest.raises(
        isosweep.UsageError,
        match=r"isosweep\.dims: no column 'norm'.*dims has: .*norm_mean"
        r".*through trial_key, trials has: .*dataset",
    ):
        isosweep.dims(smoke_store, norm=1.0)
    with pytest.raises(
        isosweep.UsageError, match=r"isosweep\.curves, trial_filters: no column 'step'.*; trials has: trial_key"
    ):
        isosweep.curves(smoke_store, trial_filters={"step": 1})  # a curves column, not a trials one
    with pytest.raises(isosweep.UsageError, match=r"Could not convert string 'abc'.*lam='abc'"):
        isosweep.trials(smoke_store, lam="abc")


# -- dims, curves, points --------------------------------------------------------------------------


def test_dims_filtered_by_trials_columns(smoke_store: Path) -> None:
    every = isosweep.dims(smoke_store)
    latent = int(isosweep.trials(smoke_store)["latent_dim"].iloc[0])
    assert len(every) == TOY_TRIALS * latent
    keys = set(isosweep.trials(smoke_store, study="toy", lam=100.0)["trial_key"])
    at_100 = isosweep.dims(smoke_store, study="toy", lam=100.0)
    assert set(at_100["trial_key"]) == keys and len(at_100) == len(keys) * latent
    assert list(at_100.columns) == list(every.columns)  # the dims columns only, no joined ones
    assert list(zip(at_100["trial_key"], at_100["dim"])) == sorted(zip(at_100["trial_key"], at_100["dim"]))
    # An own column and a trials column together, against the same question in SQL.
    active = isosweep.dims(smoke_store, lam=100.0, loss="se", active=True)
    expected = isosweep.query(
        smoke_store,
        "select d.* from dims d join trials t using (trial_key) "
        "where t.lam = 100 and t.loss = 'se' and d.active order by trial_key, dim",
    )
    assert len(active) > 0 and set(active["active"]) == {True}
    assert active.reset_index(drop=True).equals(expected)


def test_curves_and_points_filtered_by_trials_columns(smoke_store: Path) -> None:
    key = isosweep.trials(smoke_store, dataset="mix", loss="se", lam=100.0)["trial_key"]
    assert len(key) == 1
    # `loss` is also a curves column (a value per epoch): trial_filters names the trials' one.
    curves = isosweep.curves(smoke_store, dataset="mix", lam=100.0, trial_filters={"loss": "se"})
    assert set(curves["trial_key"]) == {key.iloc[0]} and len(curves) > 1
    assert list(curves["step"]) == sorted(curves["step"])
    with pytest.raises(isosweep.UsageError, match=r"trial_filters=\{'loss': \.\.\.\}"):
        isosweep.curves(smoke_store, loss="se")
    points = isosweep.points(smoke_store, dataset="ramp", lam=100.0)
    ramp = set(isosweep.trials(smoke_store, dataset="ramp", lam=100.0)["trial_key"])
    assert len(ramp) == 3 and set(points["trial_key"]) == ramp
    assert points["log_p_true"].notna().all()
    assert (
        len(points)
        == isosweep.query(
            smoke_store,
            "select count(*) n from points p join trials t using (trial_key) where dataset = ? and lam = ?",
            ["ramp", 100.0],
        )["n"][0]
    )


# -- query and connect -----------------------------------------------------------------------------


def test_query_runs_read_only_sql_with_parameters(smoke_store: Path, tmp_path: Path) -> None:
    df = isosweep.query(
        smoke_store, "select loss, count(*) n from trials where lam = ? group by loss order by loss", [100]
    )
    assert df.to_dict("records") == [{"loss": "dconv", "n": 3}, {"loss": "se", "n": 3}, {"loss": "uconv", "n": 3}]
    named = isosweep.query(smoke_store, "select count(*) n from trials where dataset = $d", {"d": "norm"})
    assert named["n"][0] == 30
    summary = isosweep.query(smoke_store, "@toy_summary")
    cli = [
        json.loads(line)
        for line in run_cli(
            "query", "@toy_summary", "--store", str(smoke_store), "--format", "json"
        ).stdout.splitlines()
    ]
    assert len(summary) == len(cli) > 0 and list(summary.columns) == list(cli[0])
    keys = ["dataset", "loss", "lam", "seeds", "norm_active", "best_estimate"]
    mine = summary[keys].astype(object).where(summary[keys].notna(), None)  # pandas' NaN is the CLI's null
    assert [tuple(r) for r in mine.itertuples(index=False)] == [tuple(r[k] for k in keys) for r in cli]


def test_query_refuses_writes_and_files_outside_the_store(smoke_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(isosweep.UsageError, match="read-only and refuses COPY"):
        isosweep.query(smoke_store, f"copy trials to '{target}'")
    assert not target.exists()
    with pytest.raises(isosweep.UsageError, match="read-only and refuses CREATE"):
        isosweep.query(smoke_store, "create table t as select 1")
    with pytest.raises(isosweep.UsageError, match="holds 2 statements"):
        isosweep.query(smoke_store, "select 1; select 2")
    with pytest.raises(isosweep.UsageError, match="/etc/passwd is outside it"):
        isosweep.query(smoke_store, "select * from read_csv('/etc/passwd')")
    with pytest.raises(isosweep.UsageError, match="unknown named query @nope; known: .*@toy_summary"):
        isosweep.query(smoke_store, "@nope")


def test_connect_is_locked_down(smoke_store: Path) -> None:
    con = isosweep.connect(smoke_store)
    assert con.execute("select count(*) from dims").fetchone() == (len(isosweep.dims(smoke_store)),)
    with pytest.raises(duckdb.PermissionException):
        con.execute("select * from read_csv('/etc/passwd')")
    with pytest.raises(duckdb.Error, match="lock"):
        con.execute("set enable_external_access = true")


def test_a_store_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-store"
    for call in (
        lambda: isosweep.trials(missing),
        lambda: isosweep.dims(missing, lam=1.0),
        lambda: isosweep.query(missing, "select 1"),
        lambda: isosweep.connect(missing),
        lambda: isosweep.report("toy", missing, out=tmp_path / "report"),
    ):
        with pytest.raises(isosweep.UsageError, match=f"store '{missing}' does not exist"):
            call()
    assert sorted(tmp_path.iterdir()) == []  # nothing made, neither the store nor the report
    with pytest.raises(isosweep.UsageError, match="folder path or an fsspec URL"):
        isosweep.trials(None)  # type: ignore[arg-type]


# -- report --------------------------------------------------------------------------------------


@pytest.mark.slow  # two reports
def test_report_writes_what_the_cli_writes(smoke_store: Path, tmp_path: Path) -> None:
    folder = isosweep.report("toy", smoke_store, out=tmp_path / "api")
    assert folder == tmp_path / "api"
    run_cli("report", "toy", "--store", str(smoke_store), "--out", str(tmp_path / "cli"))

    def files(root: Path) -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    made = files(folder)
    assert {"report.md", "report.html"} <= set(made)
    assert any(f.startswith("figures/") and f.endswith(".png") for f in made)
    assert made == files(tmp_path / "cli")
    for name in made:
        if name.startswith("tables/"):
            assert (folder / name).read_text() == (tmp_path / "cli" / name).read_text(), name
    html = (folder / "report.html").read_text()
    assert "isosweep report: toy (smoke)" in html and "<img" in html


def test_report_bad_input_writes_nothing(smoke_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    with pytest.raises(isosweep.UsageError, match="unknown study 'toys'"):
        isosweep.report("toys", smoke_store, out=out)
    with pytest.raises(isosweep.UsageError, match="no trials of study 'toy' at budget 'quick'; it has: smoke"):
        isosweep.report("toy", smoke_store, out=out, budget="quick")
    with pytest.raises(isosweep.UsageError, match="unknown budget 'huge'"):
        isosweep.report("toy", smoke_store, out=out, budget="huge")
    assert not out.exists()


# -- the package itself ----------------------------------------------------------------------------


def test_import_is_cheap_and_exports_the_api() -> None:
    probe = (
        "import sys, isosweep; "
        "print(sorted(m for m in ('duckdb', 'pandas', 'pyarrow', 'numpy', 'ray', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=cli_env())
    assert out.stdout.strip() == "[]"
    assert isosweep.__version__ == version("isosweep")
    assert set(isosweep.__all__) == {
        "UsageError",
        "__version__",
        "connect",
        "trials",
        "dims",
        "curves",
        "points",
        "query",
        "report",
        "run",
        "resume",
        "plan",
        "status",
    }
    assert all(getattr(isosweep, name) is not None for name in isosweep.__all__)
    assert isosweep.UsageError is __import__("isosweep.errors").errors.UsageError


@pytest.mark.slow  # a fresh interpreter that imports everything
def test_never_imports_bare_top_level_names(smoke_store: Path, tmp_path: Path) -> None:
    """From a folder whose own ``analysis``, ``orchestrator``, ``trainers`` (and the contracts'
    module names) refuse to be imported, the API still answers: it imports only ``isosweep.*``."""
    for package in ("analysis", "orchestrator", "trainers"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f"raise ImportError('bare {package} imported')\n")
    for module in ("errors", "schema", "store", "studies", "cli", "api"):
        (tmp_path / f"{module}.py").write_text(f"raise ImportError('bare {module} imported')\n")
    script = textwrap.dedent(f"""
        try:
            import analysis
        except ImportError as exc:
            assert str(exc) == "bare analysis imported", exc
        else:
            raise AssertionError("the decoys must come first on sys.path")
        import isosweep
        store = {str(smoke_store)!r}
        print(isosweep.trials(store).shape)
        print(isosweep.dims(store, lam=100.0).shape[0])
        print(isosweep.query(store, "@toy_summary").shape[0] > 0)
        print(isosweep.report("toy", store).name)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=cli_env(), timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")
    assert lines[:4] == [
        f"({TOY_TRIALS}, {len(isosweep.trials(smoke_store).columns)})",
        str(len(isosweep.dims(smoke_store, lam=100.0))),
        "True",
        "report-toy",
    ]
    assert (tmp_path / "report-toy" / "report.html").is_file()  # the default folder, in the current one


# -- an object store -------------------------------------------------------------------------------


@pytest.mark.slow  # a Ray sweep on S3
def test_api_on_an_s3_store(s3_server) -> None:
    url = "s3://isosweep-test/api"
    # --no-compact: one file per trial, so that one trial's file can be removed below.
    run_cli("run", "toy", "--budget", "smoke", "--where", "dataset=mix,lam=100", "--no-compact", "--store", url)
    df = isosweep.trials(url)
    assert len(df) == 3 and set(df["dataset"]) == {"mix"} and set(df["lam"]) == {100.0}
    assert set(df["loss"]) == {"se", "dconv", "uconv"} and set(df["status"]) == {"ok"}
    se = isosweep.trials(url, loss="se")
    assert len(se) == 1
    dims = isosweep.dims(url, loss="se")
    assert set(dims["trial_key"]) == set(se["trial_key"]) and len(dims) == int(se["latent_dim"].iloc[0])
    assert (
        isosweep.query(url, "select count(*) n from curves c join trials t using (trial_key) where t.loss = ?", ["se"])[
            "n"
        ][0]
        == len(isosweep.curves(url, trial_filters={"loss": "se"}))
        > 0
    )
    assert isosweep.connect(url).execute("select count(*) from trials").fetchone() == (3,)
    with pytest.raises(isosweep.UsageError, match="store 's3://isosweep-test/nothing-here' does not exist"):
        isosweep.trials("s3://isosweep-test/nothing-here")
    # Another writer changes the store (here: one trial's trials file removed, so the trial is no
    # longer complete): the next call sees it, however long this process has held the store.
    import fsspec

    other = fsspec.filesystem("s3", skip_instance_cache=True)
    other.rm(f"isosweep-test/api/trials/study=toy/{se['trial_key'].iloc[0]}.parquet")
    after = isosweep.trials(url)
    assert len(after) == 2 and "se" not in set(after["loss"])
    assert len(isosweep.dims(url)) == 2 * len(dims)


# -- the API guide's example -----------------------------------------------------------------------


@pytest.mark.slow  # a report and its figures
def test_api_guide_example_runs(smoke_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python block of the API guide's section "Reading a store" (docs/guide/api.md), run over
    the smoke store instead of demo-results (the README's examples are run by tests/test_readme.py)."""
    guide = (REPO / "docs" / "guide" / "api.md").read_text()
    section = guide.split("## Reading a store\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```python\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    assert block is not None
    code = block.group(1)
    assert code.count('"demo-results"') == 1
    monkeypatch.chdir(tmp_path)  # the example's report folder is relative to the current folder
    scope: dict[str, object] = {}
    exec(compile(code.replace('"demo-results"', repr(str(smoke_store))), "docs/guide/api.md", "exec"), scope)
    assert len(scope["trials"]) == 20 and len(scope["dims"]) > 0  # type: ignore[arg-type]
    assert set(scope["curves"]["trial_key"]) == set(isosweep.trials(smoke_store, lam=100.0, loss="se")["trial_key"])  # type: ignore[index]
    assert list(scope["df"]["loss"].sort_values()) == ["dconv", "se", "uconv"]  # type: ignore[index]
    assert scope["folder"] == tmp_path / "demo-report" and (tmp_path / "demo-report" / "report.html").is_file()
    assert scope["con"].execute("select count(*) from trials").fetchone() == (TOY_TRIALS,)  # type: ignore[attr-defined]
