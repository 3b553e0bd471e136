"""A store's path is literal: ``*``, ``?`` and ``[ ]`` in it never reach a sibling store.

The data-loss case of issue 15, item 1: compacting ``/x/s*`` used to glob ``/x/sA``'s files into
its own compaction and remove them from ``sA``; ``run`` counted ``sA``'s trials as its own.
"""

from __future__ import annotations

import json
import shutil

import pytest
from support import make_store, snapshot

from isosweep.cli import main


@pytest.fixture
def siblings(tmp_path):
    """``x/sA``: a complete little store; ``x/s*``, ``x/s?`` and ``x/s[A]`` (names that, as globs,
    match ``sA``): each one complete trial copied from sA (its file of every table), as in the issue."""
    parent = tmp_path / "x"
    keys = make_store(parent / "sA", trials=6)
    victims = {}
    for name in ("s*", "s?", "s[A]"):
        for src in (parent / "sA").glob(f"*/study=toy/{keys[0]}.parquet"):
            dest = parent / name / src.relative_to(parent / "sA")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest)
        victims[name] = parent / name
    return parent, keys, victims


@pytest.mark.parametrize("name", ["s*", "s?", "s[A]"])
def test_compacting_a_store_with_glob_characters_leaves_its_sibling_alone(siblings, capsys, name):
    parent, keys, victims = siblings
    before = snapshot(parent / "sA")
    assert main(["compact", "--store", str(victims[name])]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert snapshot(parent / "sA") == before  # the sibling: not one byte moved
    assert main(["query", "select count(*) as n from trials", "--store", str(parent / "sA"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"n": 6}
    assert main(["query", "select count(*) as n from trials", "--store", str(victims[name]), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"n": 1}


@pytest.mark.parametrize("name", ["s*", "s?", "s[A]"])
def test_a_run_counts_only_its_own_trials(siblings, capsys, name):
    parent, keys, victims = siblings
    assert main(["run", "toy", "--dry-run", "--store", str(victims[name])]) == 0
    out = capsys.readouterr().out
    assert "1 already complete, 89 to run" in out  # sA's 6 are not this store's
    assert main(["status", "--store", str(victims[name])]) == 0
    assert "toy    smoke   90       1 " in capsys.readouterr().out


def test_queries_of_the_sibling_files_are_refused(siblings, capsys):
    """SQL over ``s*`` reads ``s*``'s files; a pattern that would expand into ``sA`` is refused."""
    parent, keys, victims = siblings
    star = victims["s*"]
    assert main(["query", f"select count(*) from read_parquet('{star}/trials/*/*.parquet')", "--store", str(star)]) == 2
    err = capsys.readouterr().err
    assert "is outside it" in err and len(err.splitlines()) == 1
