"""The ``isosweep`` command line (ARCHITECTURE.md, "CLI").

Exit codes: 0 success; 1 the command ran but some trials failed; 2 bad usage or bad input, with
one line on stderr that says what is wrong and how to fix it, and nothing written.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import re
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from isosweep.analysis.db import DEFAULT_TIMEOUT_S, QueryResult
from isosweep.errors import NoSpaceError, UsageError, first_line, no_space, no_space_path
from isosweep.interrupts import deferred_interrupt, exit_code_for_interrupt, stop_signals_as_ctrl_c
from isosweep.orchestrator.address import check_address
from isosweep.orchestrator.plan import make_plan, parse_fuse
from isosweep.orchestrator.userdata import load_user_data, stage
from isosweep.paths import expand_home, inside, not_a_regular_file
from isosweep.store import UNREADABLE_FIX, Store, default_store_url, replace_file
from isosweep.studies import STUDIES, Study, check_inputs, get_study, int_setting_max, parse_where
from isosweep.trainers.data import data_root
from isosweep.trainers.kinds import kind_of

BUDGET_CHOICES = ("smoke", "quick", "paper")

MAX_TRIALS = 10_000
"""The largest sweep ``isosweep run`` plans without ``--max-trials``: the biggest study at the paper
budget plans a few hundred trials, so ten thousand is a typo (``--seeds 100000000``) far more often
than a plan, and planning it alone would take minutes."""

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""A sweep name: it names a folder under ``<store>/ray/``, so no separators, no ``..``."""


class Interrupted(Exception):
    """Ctrl-C: the message says how to go on."""


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


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def _seed_count(text: str) -> int:
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


def _gpu_share(text: str) -> float:
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
    run.add_argument("--seeds", type=_seed_count, default=None, help="number of seeds 0..N-1 (default: the budget's)")
    run.add_argument(
        "--max-trials",
        type=_positive_int,
        default=MAX_TRIALS,
        help=f"refuse to plan more trials than this (default {MAX_TRIALS:,})",
    )
    run.add_argument("--fuse", default="auto", help="trials per bundle: auto | off | N (default auto)")
    run.add_argument(
        "--gpus-per-trial",
        type=_gpu_share,
        default=None,
        help="GPUs per trial, may be fractional (default 0; image studies: 1 where the cluster has a GPU)",
    )
    run.add_argument("--cpus-per-trial", type=_positive_int, default=1)
    run.add_argument("--max-concurrent", type=_positive_int, default=None)
    run.add_argument(
        "--max-failures", type=_non_negative_int, default=2, help="Ray retries of a failed bundle (default 2)"
    )
    run.add_argument("--address", default=None, help="address of a running Ray cluster (default: start a local one)")
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
        type=_positive_int,
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
        type=_positive_int,
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


# -- commands ---------------------------------------------------------------------------------


def cmd_studies(args: argparse.Namespace) -> int:
    for study in STUDIES.values():
        print(f"{study.name}: {study.description}")
        for axis in study.axes:
            print(f"  {axis.name}: {', '.join(str(v) for v in axis.values)}")
        for budget in study.budgets.values():
            n = study.size(budget.name) * budget.seeds
            print(
                f"  budget {budget.name}: {n} trials ({study.size(budget.name)} per seed x {budget.seeds} seed(s)); {budget.note}"
            )
    return 0


def _open_store(url: str | None, for_writing: bool, must_exist: bool = False) -> Store:
    """The store, checked without writing anything (``Store.check_usable``); ``must_exist``: a
    store that does not exist is an error (reading a mistyped path is not an empty answer)."""
    store = Store(url or default_store_url())
    store.check_usable(for_writing)
    if must_exist:
        store.require_existing()
    return store


def _planned_size(study: Study, budget: str, seeds: int | None, where: dict[str, tuple[Any, ...]]) -> int:
    """How many trials ``study.configs`` would plan, counted without building them."""
    n = len(where["seed"]) if "seed" in where else (seeds if seeds is not None else study.budget(budget).seeds)
    for axis in study.axes:
        n *= len(where.get(axis.name, study.axis_values(axis, budget)))
    return n


def _check_size(planned: int, limit: int, what: str) -> None:
    if planned > limit:
        raise UsageError(
            f"{what} plans {planned:,} trials, more than the limit of {limit:,}; narrow it (--seeds, --where) "
            f"or raise the limit with --max-trials {planned}"
        )


def _check_out_file(out: str, store: Store) -> None:
    """``--out`` of a query: a local file path whose folder exists, never inside the store (a query
    result written over a trial file would change what the store answers)."""
    if "://" in out or "::" in out:
        raise UsageError(f"--out {out!r}: write the result to a local file path (copy it elsewhere afterwards)")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise UsageError(f"--out {out!r}: folder {folder} does not exist; create it first or choose another path")
    if store.local and inside(out, store.root):
        raise UsageError(
            f"--out {out!r} is inside the store {store.url!r}, which only sweeps write; choose a path outside it"
        )
    _check_out_target(out)
    if not os.access(folder, os.W_OK):
        raise UsageError(f"--out {out!r}: folder {folder} is not writable; choose another path")


def _check_out_target(out: str) -> None:
    """``--out`` of a query: absent or a regular file, which the result replaces whole. A link,
    a device (``/dev/full``) or a folder there is refused, never replaced nor written through."""
    if os.path.isdir(out):
        raise UsageError(f"--out {out!r} is a folder; give a file path, e.g. {os.path.join(out, 'result.csv')}")
    found = not_a_regular_file(out)
    if found is not None:
        raise UsageError(
            f"--out {out!r} is {found}, which isosweep never replaces nor writes through; "
            "give the path of a regular file (or leave out --out and redirect stdout)"
        )


def cmd_run(args: argparse.Namespace) -> int:
    study = get_study(args.study)
    study.budget(args.budget)
    where = parse_where(study, args.where)
    fuse = parse_fuse(args.fuse)
    check_address(args.address)
    if args.search is not None or args.num_samples is not None or args.lam_range is not None:
        return _run_search(args, study, where)
    _check_size(_planned_size(study, args.budget, args.seeds, where), args.max_trials, f"study {study.name}")
    if args.address is None and args.cpus_per_trial > (os.cpu_count() or 1):
        # A local Ray instance gets this machine's cores: say so now, before Ray starts.
        raise UsageError(
            f"--cpus-per-trial {args.cpus_per_trial} is more than this machine's {os.cpu_count()} CPU(s), "
            "so no trial could ever start; lower it (or run on a cluster with --address)"
        )
    user = load_user_data(study, args.data, args.features, args.density_column, args.latent_dim, args.data_root)
    try:
        configs = study.configs(args.budget, args.seeds, where, user.fields() if user else None)
    except ValueError as exc:
        raise UsageError(f"invalid trial settings: {exc}") from None
    if user is None:
        check_inputs(study, configs, data_root(args.data_root))
    else:
        print(user.describe(), flush=True)
    store = _open_store(args.store, for_writing=not args.dry_run)
    complete = store.completed_keys([c.key for c in configs])
    sweep = args.name or f"{study.name}-{args.budget}"
    to_run = [c for c in configs if args.force or c.key not in complete]
    if not to_run or (args.dry_run and args.address is None):
        # Nothing to run, or a local dry run: this machine's cores, as a local Ray would offer them.
        plan = make_plan(
            configs,
            complete,
            fuse,
            args.max_concurrent or max(1, (os.cpu_count() or 1) // args.cpus_per_trial),
            args.force,
        )
        driver = None
    else:
        from isosweep.orchestrator import driver  # Ray is imported only when a sweep is planned on it.

        options = driver.RunOptions(
            sweep=sweep,
            cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial,
            max_concurrent=args.max_concurrent,
            max_failures=args.max_failures,
            address=args.address,
            force_since=driver.now_iso() if args.force else None,
            data_root=data_root(args.data_root),
            compact=not args.no_compact,
        )
        plan = driver.cluster_plan(configs, complete, fuse, args.force, options)
    print(
        f"{sweep}: {len(plan.planned)} trials planned, {len(plan.complete)} already complete, "
        f"{len(plan.to_run)} to run in {len(plan.bundles)} bundle(s); store {store.url}",
        flush=True,
    )
    if args.dry_run:
        for i, bundle in enumerate(plan.bundles):
            print(f"  bundle {i}: {len(bundle)} trial(s): {' '.join(c.key for c in bundle)}")
        return 0
    if driver is None:
        from isosweep.orchestrator import driver

        options = driver.RunOptions(
            sweep=sweep,
            cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial,
            max_concurrent=args.max_concurrent,
            max_failures=args.max_failures,
            address=args.address,
            data_root=data_root(args.data_root),
            compact=not args.no_compact,
        )
    if plan.bundles:
        # Everything that can refuse the sweep is checked before its first write (the store's folder).
        driver.prepare(
            store, options, reads_data_root=user is None and any(kind_of(c).check is not None for c in plan.to_run)
        )
        store.create()
        if user:
            options = replace(options, data_root=stage(store, user))
    try:
        counts = driver.run_sweep(plan, store, options)
    except KeyboardInterrupt:
        raise Interrupted(_resume_hint(sweep, store)) from None
    print(_counts_line(sweep, counts, len(plan.planned)), flush=True)
    if study.summary is not None and counts["ok"]:
        match = {"data_hash": user.data_hash} if user is not None else {}
        _print_summary(
            store,
            args.budget,
            study.summary,
            {"study": study.records_as or study.name, **match},
            drop=study.summary_hide,
        )
    return 0 if counts["ok"] == len(plan.planned) else 1


def _run_search(args: argparse.Namespace, study: Study, where: dict[str, tuple[Any, ...]]) -> int:
    """``isosweep run anomaly --search optuna ...``: see ``isosweep.orchestrator.search``."""
    from isosweep.orchestrator.search import SearchSpec, check_search, parse_range, read_history, template_configs

    if args.search is None:
        raise UsageError("--num-samples and --lam-range belong to a search: add --search optuna")
    if args.force:
        raise UsageError("--force does not apply to a search; give the search a new --name to start it afresh")
    dataset = check_search(study, args.search, where, args.num_samples)
    low, high = parse_range(args.lam_range)
    sweep = args.name or f"anomaly-search-{dataset}-{args.budget}"
    _check_size(args.num_samples * (args.seeds or 1), args.max_trials, "the search")
    spec = SearchSpec(sweep, dataset, args.budget, tuple(range(args.seeds or 1)), args.num_samples, low, high)
    try:
        templates = template_configs(study, spec, where)
    except ValueError as exc:
        raise UsageError(f"invalid trial settings: {exc}") from None
    check_inputs(study, templates, data_root(args.data_root))
    store = _open_store(args.store, for_writing=not args.dry_run)
    history = read_history(store, study, spec, where)
    remaining = max(0, spec.num_samples - history.own_done)
    print(
        f"{sweep}: search of {dataset} at budget {args.budget} with {args.search} (TPE): {spec.num_samples} point(s) "
        f"of {len(spec.seeds)} seed(s), lambda1 and lambda2 log-uniform on [{low:g}, {high:g}]; "
        f"{history.own_done} done, {remaining} to run; {len(history.evaluated)} evaluated point(s) in the store "
        f"guide the sampler; store {store.url}",
        flush=True,
    )
    if args.dry_run:
        return 0
    from isosweep.orchestrator import driver

    options = driver.RunOptions(
        sweep=sweep,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_concurrent=args.max_concurrent,
        max_failures=args.max_failures,
        address=args.address,
        data_root=data_root(args.data_root),
        compact=not args.no_compact,
    )
    if remaining > 0:
        driver.prepare(store, options, reads_data_root=True)  # a search's anomaly trials read the data root
        store.create()
    try:
        counts = driver.run_search(spec, templates, history, store, options)
    except KeyboardInterrupt:
        raise Interrupted(_resume_hint(sweep, store)) from None
    print(
        f"{sweep}: ok {counts['ok']}, failed {counts['failed']}, diverged {counts['diverged']} trial(s) in the search",
        flush=True,
    )
    if counts["ok"]:
        _print_summary(store, args.budget, "anomaly_search", {"study": study.name, "sweep": sweep}, limit=5)
    return 0 if counts["failed"] == counts["diverged"] == 0 else 1


def _print_summary(
    store: Store, budget: str, name: str, match: dict[str, Any], limit: int | None = None, drop: Sequence[str] = ()
) -> None:
    """Print the named query's rows at ``budget`` that equal ``match`` in the columns it has,
    leaving out the columns matched on and ``drop``."""
    from isosweep.analysis.db import run_query
    from isosweep.analysis.formatting import as_table
    from isosweep.analysis.queries import named_query

    sql = named_query(name)
    columns = set(run_query(store.url, f"SELECT * FROM ({sql}) LIMIT 0").columns)
    match = {column: value for column, value in {"budget": budget, **match}.items() if column in columns}
    exclude = ", ".join(f'"{c}"' for c in dict.fromkeys([*match, *drop]) if c in columns)
    where = " AND ".join(f'"{column}" = ?' for column in match) or "TRUE"
    tail = f" LIMIT {int(limit)}" if limit else ""
    selected = f"* EXCLUDE ({exclude})" if exclude else "*"
    result = run_query(store.url, f"SELECT {selected} FROM ({sql}) WHERE {where}{tail}", list(match.values()))
    print(as_table(result.columns, result.rows))


def _counts_line(sweep: str, counts: dict[str, int], planned: int) -> str:
    """The closing line of a run or resume: the planned trials' states (damaged ones only where any)."""
    damaged = f"damaged {counts['damaged']}, " if counts.get("damaged") else ""
    return (
        f"{sweep}: ok {counts['ok']}, failed {counts['failed']}, diverged {counts['diverged']}, {damaged}"
        f"missing {counts['missing']} of {planned}"
    )


def _resume_hint(sweep: str, store: Store) -> str:
    return (
        f"interrupted; completed trials are kept: finish the sweep with `isosweep resume {sweep} --store {store.url}` "
        "(or run the same command again)"
    )


def cmd_status(args: argparse.Namespace) -> int:
    from isosweep.analysis.formatting import as_table

    store = _open_store(args.store, for_writing=False, must_exist=True)
    states = store.trial_states()
    damaged = sorted((s for s in states.values() if s.missing), key=lambda s: (s.study, s.budget, s.key))
    present: dict[tuple[str, str], dict[str, str]] = {}
    for key, state in states.items():
        present.setdefault((state.study, state.budget), {})[key] = state.state
    table = []
    for (study_name, budget), keys in sorted(present.items()):
        study = STUDIES.get(study_name)
        if study is not None and study.needs_user_data:
            planned = set(keys)  # its trials are known only from the user's data file
        else:
            planned = {c.key for c in study.configs(budget)} if study and budget in study.budgets else set()
        statuses = list(keys.values())
        # The damaged column is shown only where there are damaged trials.
        table.append(
            (
                study_name,
                budget,
                len(planned),
                statuses.count("ok"),
                statuses.count("failed"),
                statuses.count("diverged"),
                *([statuses.count("damaged")] if damaged else []),
                len(planned - set(keys)),
                len(set(keys) - planned),
            )
        )
    print(
        as_table(
            [
                "study",
                "budget",
                "planned",
                "ok",
                "failed",
                "diverged",
                *(["damaged"] if damaged else []),
                "missing",
                "extra",
            ],
            table,
        )
    )
    if damaged:
        print(
            f"{len(damaged)} trial(s) recorded ok lack a readable table; the next `isosweep run` of their "
            "sweep trains them again:"
        )
        for state in damaged[:LISTED]:
            print(f"  {state.study} {state.budget} {state.key}: no readable {', '.join(state.missing)} rows")
        if len(damaged) > LISTED:
            print(f"  ... and {len(damaged) - LISTED} more")
    if store.corrupt:
        print(f"{len(store.corrupt)} unreadable file(s), skipped above; {UNREADABLE_FIX}:")
        for path in store.corrupt:
            print(f"  {store.uri(path)}")
    return 0


LISTED = 20
"""Damaged trials that ``status`` names one by one; it counts the rest."""


def cmd_resume(args: argparse.Namespace) -> int:
    check_address(args.address)
    store = _open_store(args.store, for_writing=True, must_exist=True)
    from isosweep.orchestrator import driver

    try:
        counts, planned = driver.resume_sweep(store, args.name, args.address, compact=not args.no_compact)
    except KeyboardInterrupt:
        raise Interrupted(_resume_hint(args.name, store)) from None
    print(_counts_line(args.name, counts, planned), flush=True)
    return 0 if counts["ok"] == planned else 1


def cmd_compact(args: argparse.Namespace) -> int:
    from isosweep.orchestrator.compact import compact
    from isosweep.orchestrator.faults import compact_kill_point

    store = _open_store(args.store, for_writing=True, must_exist=True)
    report = compact(store, kill=compact_kill_point)
    print(
        f"compacted {report.merged_files} file(s) into {report.written_files} file(s)"
        + (f"; kept {len(report.kept_changed)} that changed meanwhile" if report.kept_changed else "")
    )
    if report.skipped_corrupt:
        # The readable files were merged; the unreadable ones stay where they are, untouched.
        raise UsageError(
            f"{len(report.skipped_corrupt)} unreadable file(s) left unmerged: "
            f"{', '.join(store.uri(p) for p in report.skipped_corrupt)}; {UNREADABLE_FIX} "
            "(`isosweep status` lists them)"
        )
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    # Ctrl-C before the result is in is held back to clean points (see isosweep.interrupts): a
    # KeyboardInterrupt raised inside these imports or the store's first listing could be lost
    # in a finalizer, and the query would then run to its end.
    with deferred_interrupt():
        result = _query_result(args)
    return _write_query_result(args, result)


def _query_result(args: argparse.Namespace) -> QueryResult:
    import duckdb

    from isosweep.analysis.db import run_query
    from isosweep.analysis.queries import named_query

    if args.format == "parquet" and not args.out:
        raise UsageError("--format parquet needs --out FILE")
    sql = args.sql
    if sql.startswith("@"):
        try:
            sql = named_query(sql[1:])
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
    store = _open_store(args.store, for_writing=False, must_exist=True)
    if args.out:
        _check_out_file(args.out, store)
    try:
        result = run_query(store.url, sql, as_arrow=args.format == "parquet", timeout=args.timeout)
    except duckdb.Error as exc:
        raise UsageError(f"query failed: {_without_settings_hint(first_line(exc))}") from None
    if not result.columns:
        raise UsageError("the query returned no result set; write a SELECT over trials, dims, curves or points")
    return result


def _write_query_result(args: argparse.Namespace, result: QueryResult) -> int:
    from isosweep.analysis.formatting import FORMATTERS

    try:
        if result.table is not None:
            import pyarrow.parquet as pq

            buf = io.BytesIO()
            pq.write_table(result.table, buf)
            _check_out_target(args.out)  # again: the query ran meanwhile
            replace_file(args.out, buf.getvalue())  # whole or not at all: a file already there survives a failure
            return 0
        text = FORMATTERS[args.format](result.columns, result.rows)
        if args.out:
            _check_out_target(args.out)  # again: the query ran meanwhile
            replace_file(args.out, (text + "\n").encode())
        else:
            print(text)
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}; choose another --out") from None
    return 0


_SETTINGS_HINT = re.compile(r"""\s*(?:Use|Try) ["']?(?:SET|PRAGMA|RESET) [^"']*["']?[^.]*\.?""")


def _without_settings_hint(message: str) -> str:
    """DuckDB's message less its advice to change a setting (``Use "SET max_expression_depth TO x"``),
    which isosweep query refuses: the fix is a simpler query."""
    cut = _SETTINGS_HINT.sub("", message)
    return (
        cut
        if cut == message
        else cut.rstrip() + " (isosweep query cannot change DuckDB's settings; simplify the query)"
    )


def cmd_report(args: argparse.Namespace) -> int:
    from isosweep.analysis.report import check_out_dir, default_out, make_report

    study = get_study(args.study)
    if args.budget is not None:
        study.budget(args.budget)
    store = _open_store(args.store, for_writing=False, must_exist=True)
    out = args.out if args.out is not None else default_out(study.name)
    check_out_dir(out, store)
    result = make_report(store.url, study.name, out, args.budget)
    doc = result.document
    print(
        f"{result.out}: report.md, report.html, {len(doc.figures())} figure(s), {len(doc.tables())} table(s) "
        f"for study {study.name} at budget {result.budget}"
        + (f"; {result.warnings} note(s) on what is missing" if result.warnings else "")
    )
    return 0


INTERRUPTED = {
    "run": "interrupted; completed trials are kept, run the same command again to finish",
    "resume": "interrupted; completed trials are kept, run the same command again to finish",
    "compact": "compaction interrupted; the store is whole (a compaction is safe to stop), run it again to finish",
    "query": "query interrupted; nothing was written",
    "report": "report interrupted; its output folder may be incomplete, run it again",
}
"""What Ctrl-C (KeyboardInterrupt) prints, per command, where no more specific message applies."""

COMMANDS = {
    "studies": cmd_studies,
    "run": cmd_run,
    "resume": cmd_resume,
    "status": cmd_status,
    "query": cmd_query,
    "compact": cmd_compact,
    "report": cmd_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `isosweep query ... | head` ends quietly
    stop_signals_as_ctrl_c(reset=True)  # SIGTERM and SIGHUP stop a command as Ctrl-C does
    command = None
    args = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        if getattr(args, "out", None):
            # `~` as a shell expands it (the store's and the data root's are expanded where they
            # are opened): every check and write below sees the folder the user meant.
            args.out = expand_home(args.out, "--out")
        return COMMANDS[args.command](args)
    except OSError as exc:
        if not no_space(exc):
            raise
        # A full disk is the user's to fix, wherever the write was: one line, no traceback.
        where = no_space_path(exc) or getattr(args, "store", None) or default_store_url()
        then = NoSpaceError.SWEEP if command in ("run", "resume") else "run the command again"
        print(f"isosweep: error: {NoSpaceError(where, then)}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"isosweep: error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"isosweep: {exc}", file=sys.stderr)
        return exit_code_for_interrupt()
    except KeyboardInterrupt:
        print(f"isosweep: {INTERRUPTED.get(command or '', 'interrupted')}", file=sys.stderr)
        return exit_code_for_interrupt()


if __name__ == "__main__":
    sys.exit(main())
