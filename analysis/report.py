"""``isosweep report STUDY``: a study's summary tables and figures in one report.

The report is built in memory (every query run, every figure rendered) and only then written:
``report.md``, a self-contained ``report.html``, ``figures/<name>.png`` and ``tables/<name>.csv``
under the output folder. Bad input raises UsageError before anything is written. The sections
of each study are registered in :mod:`isosweep.analysis.sections`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from isosweep.analysis.context import ReportContext
from isosweep.analysis.db import connect, unreadable_file_error, vanished
from isosweep.analysis.document import (
    FIGURES_DIR,
    TABLES_DIR,
    Document,
    Note,
    check_unique_names,
    table_csv,
    to_html,
    to_markdown,
)
from isosweep.analysis.queries import named_query
from isosweep.analysis.sections import sections_for
from isosweep.errors import UsageError, first_line
from isosweep.paths import expand_home, inside, not_a_regular_file
from isosweep.store import Store
from isosweep.studies import Study, get_study

_ATTEMPTS = 3
"""Builds tried when a store file disappears under the report (a compaction merged it)."""


@dataclass(frozen=True)
class ReportResult:
    """Where the report went and what it holds."""

    out: Path
    document: Document
    budget: str

    @property
    def warnings(self) -> int:
        """Number of notes that say what is missing."""
        return sum(1 for s in self.document.sections for b in s.blocks if isinstance(b, Note) and b.warning)


def default_out(study: str) -> str:
    return f"report-{study}"


def check_out_dir(out: str | os.PathLike[str], store: Store | None = None) -> Path:
    """The output folder, if it is (or can be made) a writable folder outside ``store`` where every
    file the report writes is absent or a regular file; UsageError otherwise."""
    path = Path(expand_home(os.fspath(out), "--out")).absolute()
    if store is not None and store.local and inside(str(path), store.root):
        # A report written among the store's tables would change what the store answers.
        raise UsageError(
            f"--out {str(out)!r} is inside the store {store.url!r}, which only sweeps write; choose a folder outside it"
        )
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {str(out)!r} is a file, not a folder; pass a folder for the report")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"--out {str(out)!r} cannot be created: {existing} is a file; pass another folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out {str(out)!r} is not writable ({existing} does not allow writing); pass another folder")
    for sub in (FIGURES_DIR, TABLES_DIR):
        if (path / sub).exists() and not (path / sub).is_dir():
            raise UsageError(
                f"--out {str(out)!r} holds a file named {sub!r} where the report puts a folder; pass another folder"
            )
        if (path / sub).is_symlink():
            # Stale figures and tables are removed from these folders: never from a linked one.
            raise UsageError(
                f"--out {str(out)!r}: its {sub!r} is a symbolic link, where the report removes stale "
                "files and writes new ones; pass another folder"
            )
    for name in _report_files(path):
        found = not_a_regular_file(str(path / name))
        if found is not None:
            raise UsageError(
                f"--out {str(out)!r}: its {name!r} is {found}, which the report never replaces nor "
                "writes through; remove it or pass another folder"
            )
    return path


def _report_files(path: Path) -> list[str]:
    """The names (relative to ``path``) of the files a report there may write or remove: its
    pages, and every figure and table already there."""
    names = ["report.md", "report.html"]
    for sub, suffix in ((FIGURES_DIR, ".png"), (TABLES_DIR, ".csv")):
        if (path / sub).is_dir():
            names += [f"{sub}/{e.name}" for e in os.scandir(path / sub) if e.name.endswith(suffix)]
    return sorted(names)


def choose_budget(con: duckdb.DuckDBPyConnection, study: Study, store_url: str, requested: str | None) -> str:
    """The budget to report: ``requested``, else the largest with an ok trial, else the largest present."""
    if requested is not None:
        study.budget(requested)
    rows = con.execute(
        f"SELECT budget, status, trials FROM ({named_query('study_overview')}) WHERE study = ?",
        [study.records_as or study.name],
    ).fetchall()
    present = {budget for budget, _, _ in rows}
    if not present:
        raise UsageError(
            f"store {store_url!r} has no trials of study {study.name!r}; run "
            f"`isosweep run {study.name} --store {store_url}` first"
        )
    if requested is not None:
        if requested not in present:
            raise UsageError(
                f"store {store_url!r} has no trials of study {study.name!r} at budget {requested!r}; "
                f"it has: {', '.join(sorted(present))}"
            )
        return requested
    order = list(study.budgets)
    rank = {b: i for i, b in enumerate(order)}
    with_ok = {budget for budget, status, _ in rows if status == "ok"}
    pool = with_ok or present
    return max(pool, key=lambda b: (rank.get(b, -1), b))


def _settings(study: Study, budget: str) -> dict[str, str]:
    # A study on a user's data needs the file's fields to make a config; these two settings do not.
    config = study.configs(budget, seeds=1, inputs={"latent_dim": 1} if study.needs_user_data else None)[0]
    return {"reduction": config.reduction, "lr_schedule": config.lr_schedule}


def _lead(ctx: ReportContext) -> list[str]:
    budget = ctx.study.budgets.get(ctx.budget)
    spec = ", ".join(f"{k} {v}" for k, v in budget.settings.items()) if budget else ""
    settings = ", ".join(f"{k} {v}" for k, v in ctx.settings.items())
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"Study {ctx.study.name}: {ctx.study.description}.",
        f"Store {ctx.store_url}; budget {ctx.budget}" + (f" ({spec})" if spec else "") + f"; {settings}.",
        f"Generated {stamp}. Every table is a named query: `isosweep query @NAME --store STORE` gives it "
        "over the whole store.",
    ]


def build_document(store_url: str, study_name: str, budget: str | None = None) -> tuple[Document, str]:
    """The report of ``study_name`` over the store, built in memory, and the budget it shows."""
    study = get_study(study_name)
    last: duckdb.Error | None = None
    for _ in range(_ATTEMPTS):
        con = connect(store_url)
        try:
            chosen = choose_budget(con, study, store_url, budget)
            ctx = ReportContext(con, study, chosen, _settings(study, chosen), store_url)
            sections = [s for s in (fn(ctx) for fn in sections_for(study)) if s is not None]
            doc = Document(f"isosweep report: {study.name} ({chosen})", _lead(ctx), sections)
            check_unique_names(doc)
            return doc, chosen
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:
            damaged = unreadable_file_error(exc)
            if damaged is not None:
                raise damaged from None
            if not (vanished(exc) or isinstance(exc, duckdb.IOException)):
                raise
            last = exc  # a file merged away by a concurrent compaction: read the store again
        finally:
            con.close()
    assert last is not None
    raise UsageError(
        f"store {store_url!r} kept changing while the report was read ({first_line(last)}); run the report again"
    )


def write_report(doc: Document, out: Path) -> None:
    """Write the report's files under ``out`` (made if needed); stale PNG/CSV files there are removed."""
    markdown, page = to_markdown(doc), to_html(doc)
    figures_dir, tables_dir = out / FIGURES_DIR, out / TABLES_DIR
    for folder in (figures_dir, tables_dir):
        folder.mkdir(parents=True, exist_ok=True)
    keep = {f"{f.name}.png" for f in doc.figures()} | {f"{t.name}.csv" for t in doc.tables()}
    for folder, suffix in ((figures_dir, ".png"), (tables_dir, ".csv")):
        for old in folder.iterdir():
            if old.suffix == suffix and old.name not in keep and old.is_file():
                old.unlink()
    for figure in doc.figures():
        (figures_dir / f"{figure.name}.png").write_bytes(figure.png)
    for table in doc.tables():
        (tables_dir / f"{table.name}.csv").write_text(table_csv(table))
    (out / "report.md").write_text(markdown)
    (out / "report.html").write_text(page)


def make_report(store_url: str, study_name: str, out: str | None = None, budget: str | None = None) -> ReportResult:
    """Check the input, build the report of ``study_name`` and write it to ``out``."""
    study = get_study(study_name)
    path = check_out_dir(out if out is not None else default_out(study.name), Store(store_url))
    doc, chosen = build_document(store_url, study.name, budget)
    try:
        write_report(doc, path)
    except OSError as exc:
        raise UsageError(
            f"cannot write the report to {str(path)!r}: {exc.strerror or exc}; pass another --out"
        ) from None
    return ReportResult(path, doc, chosen)
