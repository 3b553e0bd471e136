"""The documentation's tables say what the code does: the command table of docs/guide/cli.md lists
exactly the parser's commands, arguments and flags; the studies table of docs/guide/concepts.md
lists exactly the registry's studies with their trial counts; the store layout of
docs/architecture.md names every table of the schema and the artifacts folder. The README's short
command table names only commands the parser has."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from isosweep.cli import build_parser
from isosweep.schema import TABLES
from isosweep.store import ARTIFACTS
from isosweep.studies import STUDIES

REPO = Path(__file__).resolve().parents[1]


def _section(page: str, title: str) -> str:
    """The section of ``page`` under the heading ``## title``, up to the next ``## `` heading."""
    text = (REPO / page).read_text()
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _command_rows() -> dict[str, str]:
    """Per command, the usage cell of its row in the command table."""
    rows = re.findall(r"^\| `isosweep (\w+)([^`]*)` \|", _section("docs/guide/cli.md", "Commands"), re.MULTILINE)
    return {command: usage.replace("\\|", "|") for command, usage in rows}


def test_the_command_table_lists_every_command_once():
    rows = re.findall(r"^\| `isosweep (\w+)", _section("docs/guide/cli.md", "Commands"), re.MULTILINE)
    assert sorted(rows) == sorted(_subparsers())


def test_each_command_row_names_exactly_the_parsers_flags_and_arguments():
    rows = _command_rows()
    for command, sub in _subparsers().items():
        usage = rows[command]
        flags = {s for a in sub._actions for s in a.option_strings if s.startswith("--") and s != "--help"}
        assert set(re.findall(r"--[a-z][a-z-]*", usage)) == flags, command
        positionals = [a.dest.upper() for a in sub._actions if not a.option_strings]
        # Each positional argument appears in upper case, in order, before the first flag.
        words = re.findall(r"[A-Z][A-Z_]+", usage.split("[", 1)[0])
        assert words == positionals, command


def test_the_studies_table_lists_every_study_with_its_trials_per_seed():
    rows = re.findall(
        r"^\s*\| `([\w-]+)` \| [^|]+(?:\|[^|\n]+)*? \| (\d+) \|$",
        _section("docs/guide/concepts.md", "Study"),
        re.MULTILINE,
    )
    assert {name: int(n) for name, n in rows} == {name: study.size() for name, study in STUDIES.items()}
    assert len(rows) == len(STUDIES)


def test_the_store_layout_names_every_table_and_the_artifacts_folder():
    layout = _section("docs/architecture.md", "Results store (contract)")
    for table in TABLES:
        assert f"<store>/{table}/study=<study>/<trial_key>.parquet" in layout, table
    assert f"<store>/{ARTIFACTS}/<trial_key>/" in layout


def test_the_readme_names_only_the_parsers_commands():
    rows = re.findall(
        r"^\| `isosweep (\w+)[^`]*`(?:, `isosweep (\w+)`)? \|", (REPO / "README.md").read_text(), re.MULTILINE
    )
    named = {name for row in rows for name in row if name}
    assert named == set(_subparsers())
