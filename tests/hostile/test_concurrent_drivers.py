"""Exactly once with concurrent drivers (issue 15, item 3): three `isosweep run` processes started
together on one store and one smoke sweep, five times. Every key ends up in the store once, every
trial's tables come from one run (one run_id across trials, dims, curves and points, as the views
and the raw files show), and the training work is reported: trials trained in all, against the
number planned (with claims, each trained once: 30 of 30)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from support import trained

from helpers import EXE, cli_env
from isosweep.analysis.db import run_query

SWEEP = ("run", "toy", "--budget", "smoke", "--where", "dataset=mix")
PLANNED = 30
DRIVERS = 3
REPEATS = 5


def start_drivers(store: Path) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [EXE, *SWEEP, "--store", str(store)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        for _ in range(DRIVERS)
    ]


def check_store(store: Path) -> None:
    keys = [r[0] for r in run_query(str(store), "select trial_key from trials").rows]
    assert len(keys) == PLANNED == len(set(keys))
    # The views: every trial has its dims, curves and points of the trials row's run_id.
    for table in ("dims", "curves"):
        rows = run_query(
            str(store),
            f"select t.trial_key, count(x.trial_key) from trials t left join {table} x "
            f"using (trial_key, run_id) group by 1",
        ).rows
        assert all(n >= 1 for _, n in rows), (table, [k for k, n in rows if n < 1])
    bad = run_query(
        str(store),
        "select count(*) from trials t where t.status = 'ok' and not exists "
        "(select 1 from points p where p.trial_key = t.trial_key and p.run_id = t.run_id)",
    ).rows
    assert bad == [(0,)]
    # The raw files agree too: one run_id per key across the four tables (per-trial files, or the
    # compacted files each driver's sweep-end compaction merged them into).
    run_ids: dict[str, set] = {key: set() for key in keys}
    for path in store.glob("*/study=toy/*.parquet"):
        for row in pq.read_table(path, columns=["trial_key", "run_id"]).to_pylist():
            run_ids.setdefault(row["trial_key"], set()).add(row["run_id"])
    assert all(len(ids) == 1 for ids in run_ids.values()), {k: ids for k, ids in run_ids.items() if len(ids) != 1}
    assert not [p for p in (store / "claims").rglob("*") if not p.is_dir()], "claims left behind"


@pytest.mark.slow
@pytest.mark.parametrize("repeat", range(REPEATS))
def test_three_drivers_train_each_key_once(tmp_path: Path, repeat: int, capsys) -> None:
    store = tmp_path / "store"
    started = time.monotonic()
    procs = start_drivers(store)
    outputs = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, f"{out}\n{err}"
    check_store(store)
    work = sum(trained(out) for out, _ in outputs)
    with capsys.disabled():
        print(
            f"\nrepeat {repeat}: {DRIVERS} drivers trained {work} trials for {PLANNED} planned "
            f"({[trained(out) for out, _ in outputs]} per driver) in {time.monotonic() - started:.0f} s"
        )
    assert work == PLANNED
