"""A finished trial (``TrialResult``) as the rows of each table of the store, typed by
``isosweep.schema``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from isosweep.schema import TABLES
from isosweep.store.layout import ROW_COUNTS
from isosweep.trainers.config import SCIENCE_VERSION
from isosweep.trainers.records import TrialResult


def result_tables(result: TrialResult, sweep: str, provenance: Mapping[str, Any]) -> dict[str, pa.Table]:
    """One trial's rows for every table, typed by the schema module."""
    cfg = result.config
    base = {"trial_key": result.key, "study": cfg.study, "run_id": uuid.uuid4().hex}
    config = cfg.to_dict()
    columns = set(TABLES["trials"].names)
    measured = {**result.scalars, **result.provenance, **provenance}
    unknown = set(measured) - columns
    if unknown:
        # A measurement without a column would be silently lost: refuse it instead.
        raise ValueError(f"trial row has columns the schema lacks: {sorted(unknown)}")
    # Every config field that has a column gets it (config_json holds all of them), except
    # ``epochs`` of a trial that trains by iterations: it never uses it, so its column is null.
    config_columns = {k: v for k, v in config.items() if k in columns}
    if cfg.iterations is not None:
        config_columns["epochs"] = None
    trial_row: dict[str, Any] = {
        **base,
        **config_columns,
        "sweep": sweep,
        "status": result.status.value,
        "error": result.error,
        "wall_s": result.wall_s,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "science_version": SCIENCE_VERSION,
        "config_json": json.dumps(config, sort_keys=True),
        **measured,
    }
    n_points = len(next(iter(result.points.values()))) if result.points else 0
    trial_row.update(
        {ROW_COUNTS["dims"]: len(result.dims), ROW_COUNTS["curves"]: len(result.curves), ROW_COUNTS["points"]: n_points}
    )
    points = {name: list(values) for name, values in result.points.items()}
    return {
        "trials": pa.Table.from_pylist([trial_row], schema=TABLES["trials"]),
        "dims": pa.Table.from_pylist([{**base, **d} for d in result.dims], schema=TABLES["dims"]),
        "curves": pa.Table.from_pylist([{**base, **c} for c in result.curves], schema=TABLES["curves"]),
        "points": pa.Table.from_pydict(
            {**{k: [v] * n_points for k, v in base.items()}, **points}, schema=TABLES["points"]
        )
        if n_points
        else TABLES["points"].empty_table(),
    }
