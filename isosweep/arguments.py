"""The ``isosweep`` command line's arguments: the parser, and the types that check each option's
value as it is parsed (bad usage is one line and exit code 2, see ``isosweep.cli``)."""

from __future__ import annotations

import argparse
import math
import re

from isosweep.analysis import DEFAULT_TIMEOUT_S
from isosweep.errors import UsageError
from isosweep.orchestrator.options import EXECUTORS, MAX_TRIALS
from isosweep.study import int_setting_max

BUDGET_CHOICES = ("smoke", "quick", "paper")

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""A sweep name: it names a folder under ``<store>/ray/``, so no separators, no ``..``."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


LARGEST_INT = 2**63 - 1
"""The largest whole number an option takes: Ray, Arrow and DuckDB hold them in 64 bits, and a
larger one would fail there, mid-sweep, with an OverflowError."""


def _whole_number(text: str, least: int, most: int = LARGEST_INT) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least {least}")
    if value > most:
        raise argparse.ArgumentTypeError(f"{text!r} must be at most {most:,}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def seed_count(text: str) -> int:
    """--seeds N runs seeds 0..N-1, each of which the store's ``seed`` column must hold."""
    return _whole_number(text, 1, int_setting_max("seed") + 1)


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def gpu_share(text: str) -> float:
    """--gpus-per-trial: a share of one GPU (0 to 1) or a whole number of GPUs, as Ray accepts."""
    value = _non_negative_float(text)
    if value > 1 and value != int(value):
        raise argparse.ArgumentTypeError(
            f"{text!r}: above 1, GPUs per trial are whole numbers (Ray shares only one GPU)"
        )
    return value


def _seconds(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def _sweep_name(text: str) -> str:
    if not NAME.fullmatch(text) or ".." in text:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a plain name; use letters, digits, '.', '_' and '-' "
            "(at most 100, starting with a letter or digit), e.g. toy-smoke"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="isosweep",
        description="Run, resume and query the ablation studies of "
        "'VAE as a Non-linearly Scaled Isometric Embedding' (ICML 2021).",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("studies", help="list studies, their axes and trial counts per budget")

    run = sub.add_parser("run", help="plan a study, skip completed trials, run the rest on Ray")
    run.add_argument("study")
    run.add_argument("--budget", default="smoke", help="smoke | quick | paper (default smoke)")
    run.add_argument("--store", default=None, help="folder or fsspec URL (default $ISOSWEEP_STORE or ./results)")
    run.add_argument("--name", type=_sweep_name, default=None, help="sweep name (default STUDY-BUDGET)")
    run.add_argument(
        "--where",
        action="append",
        default=None,
        help="restrict or extend axes: K=V,K=V1|V2 (e.g. 'dataset=mix,lam=10|100'); may be given "
        "several times, which adds up the keys (a key named twice is refused: list its values once, K=V1|V2)",
    )
    run.add_argument("--seeds", type=seed_count, default=None, help="number of seeds 0..N-1 (default: the budget's)")
    run.add_argument(
        "--max-trials",
        type=positive_int,
        default=MAX_TRIALS,
        help=f"refuse to plan more trials than this (default {MAX_TRIALS:,})",
    )
    run.add_argument("--fuse", default="auto", help="trials per bundle: auto | off | N (default auto)")
    run.add_argument(
        "--gpus-per-trial",
        type=gpu_share,
        default=None,
        help="GPUs per trial, may be fractional (default 0; image studies: 1 where the cluster has a GPU)",
    )
    run.add_argument(
        "--cpus-per-trial",
        type=positive_int,
        default=None,
        help="cores of each Ray trial (default 1); with --executor local, torch's threads (default every core)",
    )
    run.add_argument("--max-concurrent", type=positive_int, default=None)
    run.add_argument(
        "--max-failures", type=non_negative_int, default=2, help="Ray retries of a failed bundle (default 2)"
    )
    run.add_argument("--address", default=None, help="address of a running Ray cluster (default: start a local one)")
    run.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="ray",
        help="ray: trials on a Ray cluster (default); local: in this process, one bundle at a time, "
        "on this machine's GPU or CPU, without Ray",
    )
    run.add_argument("--data-root", default=None, help="folder or URL of the real data sets (default $ISOSWEEP_DATA)")
    run.add_argument(
        "--data", default=None, help="study custom: your CSV or Parquet file (path or URL) of feature columns"
    )
    run.add_argument(
        "--features",
        default=None,
        help="study custom: feature columns a,b,c (default every numeric column but the density one)",
    )
    run.add_argument(
        "--density-column",
        default=None,
        help="study custom: column with the true density p(x), enables the density correlations",
    )
    run.add_argument(
        "--latent-dim",
        type=positive_int,
        default=None,
        help="study custom: latent size (default the number of features, at most 16)",
    )
    run.add_argument(
        "--search",
        default=None,
        help="study anomaly: search (lambda1, lambda2) beyond the grid with "
        "this searcher (optuna: TPE) for one data set, maximising the validation F1",
    )
    run.add_argument(
        "--num-samples",
        type=positive_int,
        default=None,
        help="with --search: the points (lambda1, lambda2) the search evaluates in all",
    )
    run.add_argument(
        "--lam-range",
        default=None,
        help="with --search: LOW:HIGH of both lambdas, sampled log-uniformly (default 1000:100000)",
    )
    run.add_argument("--dry-run", action="store_true", help="print the plan, run and write nothing")
    run.add_argument("--force", action="store_true", help="run completed trials again")
    run.add_argument(
        "--no-compact",
        action="store_true",
        help="keep one file per trial and table (by default a sweep merges its files when it ends)",
    )

    resume = sub.add_parser("resume", help="restore an interrupted sweep and finish it from its checkpoints")
    resume.add_argument("name", type=_sweep_name, help="the sweep's name (as given to or printed by `isosweep run`)")
    resume.add_argument("--no-compact", action="store_true", help="keep one file per trial and table")
    resume.add_argument("--store", default=None)
    resume.add_argument("--address", default=None, help="address of a running Ray cluster (default: start a local one)")
    resume.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=None,
        help="ray or local (default: the one that ran the sweep)",
    )

    compact = sub.add_parser("compact", help="merge per-trial files into few large ones (safe beside a sweep)")
    compact.add_argument("--store", default=None)

    status = sub.add_parser("status", help="done / failed / missing counts per study and budget")
    status.add_argument("--store", default=None)

    query = sub.add_parser("query", help="read-only SQL over the views trials, dims, curves, points")
    query.add_argument("sql", help="SQL text, or @name for a named query (e.g. @toy_summary)")
    query.add_argument("--store", default=None)
    query.add_argument("--format", default="table", choices=("table", "csv", "json", "markdown", "parquet"))
    query.add_argument(
        "--out",
        default=None,
        help="write to this file instead of stdout (never inside the store; "
        "a symbolic link, device or folder there is refused, never replaced)",
    )
    query.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_S,
        help=f"stop the query after this many seconds (default {DEFAULT_TIMEOUT_S:g})",
    )

    report = sub.add_parser("report", help="a study's summary tables and figures: report.md, report.html, PNG, CSV")
    report.add_argument("study")
    report.add_argument("--store", default=None)
    report.add_argument(
        "--out",
        default=None,
        help="output folder (default report-STUDY in the current folder; never "
        "inside the store; a symbolic link, device or folder where a report file goes is refused)",
    )
    report.add_argument("--budget", default=None, help="budget to report (default: the largest with an ok trial)")
    return parser
