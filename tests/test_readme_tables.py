"""The README's tables say what the code does: its command table lists exactly the parser's
commands, arguments and flags; its studies table lists exactly the registry's studies with their
trial counts; its store layout names every table of the schema and the artifacts folder."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from isosweep.cli import build_parser
from isosweep.schema import TABLES
from isosweep.store import ARTIFACTS
from isosweep.studies import STUDIES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _command_rows() -> dict[str, str]:
    """Per command, the usage cell of its row in the command table."""
    rows = re.findall(r"^\| `isosweep (\w+)([^`]*)` \|", _section("Command line"), re.MULTILINE)
    return {command: usage.replace("\\|", "|") for command, usage in rows}


def test_the_command_table_lists_every_command_once():
    rows = re.findall(r"^\| `isosweep (\w+)", _section("Command line"), re.MULTILINE)
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
    rows = re.findall(r"^\s*\| `([\w-]+)` \| [^|]+(?:\|[^|\n]+)*? \| (\d+) \|$", _section("Concepts"), re.MULTILINE)
    assert {name: int(n) for name, n in rows} == {name: study.size() for name, study in STUDIES.items()}
    assert len(rows) == len(STUDIES)


def test_the_store_layout_names_every_table_and_the_artifacts_folder():
    layout = _section("Concepts")
    for table in TABLES:
        assert f"<store>/{table}/study=<study>/<trial_key>.parquet" in layout, table
    assert f"<store>/{ARTIFACTS}/<trial_key>/" in layout
