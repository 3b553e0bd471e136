"""The ``isosweep`` command line (ARCHITECTURE.md, "CLI").

Exit codes: 0 success; 1 the command ran but some trials failed; 2 bad usage or bad input, with
one line on stderr that says what is wrong and how to fix it, and nothing written.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any, Sequence

from isosweep.orchestrator.address import check_address
from isosweep.errors import UsageError, first_line
from isosweep.orchestrator.plan import make_plan, parse_fuse
from isosweep.store import Store, default_store_url
from isosweep.studies import STUDIES, Study, check_inputs, get_study, parse_where
from isosweep.orchestrator.userdata import load_user_data, stage
from isosweep.trainers.data import data_root

BUDGET_CHOICES = ("smoke", "quick", "paper")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="isosweep", description="Run, resume and query the ablation studies of "
                     "'VAE as a Non-linearly Scaled Isometric Embedding' (ICML 2021).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("studies", help="list studies, their axes and trial counts per budget")

    run = sub.add_parser("run", help="plan a study, skip completed trials, run the rest on Ray")
    run.add_argument("study")
    run.add_argument("--budget", default="smoke", help="smoke | quick | paper (default smoke)")
    run.add_argument("--store", default=None, help="folder or fsspec URL (default $ISOSWEEP_STORE or ./results)")
    run.add_argument("--name", default=None, help="sweep name (default STUDY-BUDGET)")
    run.add_argument("--where", default=None, help="restrict or extend axes: K=V,K=V1|V2 (e.g. 'dataset=mix,lam=10|100')")
    run.add_argument("--seeds", type=_positive_int, default=None, help="number of seeds 0..N-1 (default: the budget's)")
    run.add_argument("--fuse", default="auto", help="trials per bundle: auto | off | N (default auto)")
    run.add_argument("--gpus-per-trial", type=_non_negative_float, default=None,
                     help="GPUs per trial, may be fractional (default 0; image studies: 1 where the cluster has a GPU)")
    run.add_argument("--cpus-per-trial", type=_positive_int, default=1)
    run.add_argument("--max-concurrent", type=_positive_int, default=None)
    run.add_argument("--max-failures", type=int, default=2, help="Ray retries of a failed bundle (default 2)")
    run.add_argument("--address", default=None, help="address of a running Ray cluster (default: start a local one)")
    run.add_argument("--data-root", default=None, help="folder or URL of the real data sets (default $ISOSWEEP_DATA)")
    run.add_argument("--data", default=None, help="study custom: your CSV or Parquet file (path or URL) of feature columns")
    run.add_argument("--features", default=None, help="study custom: feature columns a,b,c (default every numeric column but the density one)")
    run.add_argument("--density-column", default=None, help="study custom: column with the true density p(x), enables the density correlations")
    run.add_argument("--latent-dim", type=_positive_int, default=None, help="study custom: latent size (default the number of features, at most 16)")
    run.add_argument("--search", default=None, help="study anomaly: search (lambda1, lambda2) beyond the grid with "
                     "this searcher (optuna: TPE) for one data set, maximising the validation F1")
    run.add_argument("--num-samples", type=_positive_int, default=None,
                     help="with --search: the points (lambda1, lambda2) the search evaluates in all")
    run.add_argument("--lam-range", default=None, help="with --search: LOW:HIGH of both lambdas, sampled "
                     "log-uniformly (default 1000:100000)")
    run.add_argument("--dry-run", action="store_true", help="print the plan, run and write nothing")
    run.add_argument("--force", action="store_true", help="run completed trials again")

    resume = sub.add_parser("resume", help="restore an interrupted sweep and finish it from its checkpoints")
    resume.add_argument("name", help="the sweep's name (as given to or printed by `isosweep run`)")
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
    query.add_argument("--out", default=None, help="write to this file instead of stdout")

    report = sub.add_parser("report", help="a study's summary tables and figures: report.md, report.html, PNG, CSV")
    report.add_argument("study")
    report.add_argument("--store", default=None)
    report.add_argument("--out", default=None, help="output folder (default report-STUDY in the current folder)")
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
            print(f"  budget {budget.name}: {n} trials ({study.size(budget.name)} per seed x {budget.seeds} seed(s)); {budget.note}")
    return 0


def _open_store(url: str | None, for_writing: bool) -> Store:
    store = Store(url or default_store_url())
    store.check_usable(for_writing)
    return store


def cmd_run(args: argparse.Namespace) -> int:
    study = get_study(args.study)
    study.budget(args.budget)
    where = parse_where(study, args.where)
    fuse = parse_fuse(args.fuse)
    if args.max_failures < 0:
        raise UsageError("--max-failures must be >= 0")
    check_address(args.address)
    if args.search is not None or args.num_samples is not None or args.lam_range is not None:
        return _run_search(args, study, where)
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
    slots = args.max_concurrent or max(1, (os.cpu_count() or 1) // args.cpus_per_trial)
    plan = make_plan(configs, complete, fuse, slots, args.force)
    sweep = args.name or f"{study.name}-{args.budget}"
    print(f"{sweep}: {len(plan.planned)} trials planned, {len(plan.complete)} already complete, "
          f"{len(plan.to_run)} to run in {len(plan.bundles)} bundle(s); store {store.url}", flush=True)
    if args.dry_run:
        for i, bundle in enumerate(plan.bundles):
            print(f"  bundle {i}: {len(bundle)} trial(s): {' '.join(c.key for c in bundle)}")
        return 0
    from isosweep.orchestrator import driver  # Ray is imported only when a sweep really runs.

    options = driver.RunOptions(
        sweep=sweep, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=_gpus_per_trial(args, study),
        max_concurrent=args.max_concurrent, max_failures=args.max_failures, address=args.address,
        force_since=driver.now_iso() if args.force else None,
        data_root=stage(store, user) if user and plan.bundles else data_root(args.data_root),
    )
    counts = driver.run_sweep(plan, store, options)
    print(f"{sweep}: ok {counts['ok']}, failed {counts['failed']}, diverged {counts['diverged']}, "
          f"missing {counts['missing']} of {len(plan.planned)}", flush=True)
    if study.summary is not None and counts["ok"]:
        match = {"data_hash": user.data_hash} if user is not None else {}
        _print_summary(store, args.budget, study.summary, {"study": study.records_as or study.name, **match},
                       drop=study.summary_hide)
    return 0 if counts["ok"] == len(plan.planned) else 1


def _gpus_per_trial(args: argparse.Namespace, study: Study) -> float | None:
    """--gpus-per-trial as given; unset: None (one where the cluster has a GPU) for a study that
    wants a GPU, else 0."""
    if args.gpus_per_trial is not None:
        return float(args.gpus_per_trial)
    return None if study.wants_gpu else 0.0


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
    spec = SearchSpec(sweep, dataset, args.budget, tuple(range(args.seeds or 1)), args.num_samples, low, high)
    try:
        templates = template_configs(study, spec, where)
    except ValueError as exc:
        raise UsageError(f"invalid trial settings: {exc}") from None
    check_inputs(study, templates, data_root(args.data_root))
    store = _open_store(args.store, for_writing=not args.dry_run)
    history = read_history(store, study, spec, where)
    remaining = max(0, spec.num_samples - history.own_done)
    print(f"{sweep}: search of {dataset} at budget {args.budget} with {args.search} (TPE): {spec.num_samples} point(s) "
          f"of {len(spec.seeds)} seed(s), lambda1 and lambda2 log-uniform on [{low:g}, {high:g}]; "
          f"{history.own_done} done, {remaining} to run; {len(history.evaluated)} evaluated point(s) in the store "
          f"guide the sampler; store {store.url}", flush=True)
    if args.dry_run:
        return 0
    from isosweep.orchestrator import driver

    options = driver.RunOptions(
        sweep=sweep, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=_gpus_per_trial(args, study),
        max_concurrent=args.max_concurrent, max_failures=args.max_failures, address=args.address,
        data_root=data_root(args.data_root),
    )
    counts = driver.run_search(spec, templates, history, store, options)
    print(f"{sweep}: ok {counts['ok']}, failed {counts['failed']}, diverged {counts['diverged']} trial(s) "
          f"in the search", flush=True)
    if counts["ok"]:
        _print_summary(store, args.budget, "anomaly_search", {"study": study.name, "sweep": sweep}, limit=5)
    return 0 if counts["failed"] == counts["diverged"] == 0 else 1


def _print_summary(store: Store, budget: str, name: str, match: dict[str, Any],
                   limit: int | None = None, drop: Sequence[str] = ()) -> None:
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
    result = run_query(store.url, f"SELECT {selected} FROM ({sql}) WHERE {where}{tail}",
                       list(match.values()))
    print(as_table(result.columns, result.rows))


def cmd_status(args: argparse.Namespace) -> int:
    from isosweep.analysis.formatting import as_table

    store = _open_store(args.store, for_writing=False)
    states = store.trial_states()
    present: dict[tuple[str, str], dict[str, str]] = {}
    for key, state in states.items():
        present.setdefault((state.study, state.budget), {})[key] = state.status
    table = []
    for (study_name, budget), keys in sorted(present.items()):
        study = STUDIES.get(study_name)
        if study is not None and study.needs_user_data:
            planned = set(keys)  # its trials are known only from the user's data file
        else:
            planned = {c.key for c in study.configs(budget)} if study and budget in study.budgets else set()
        statuses = list(keys.values())
        table.append((study_name, budget, len(planned), statuses.count("ok"), statuses.count("failed"),
                      statuses.count("diverged"), len(planned - set(keys)), len(set(keys) - planned)))
    print(as_table(["study", "budget", "planned", "ok", "failed", "diverged", "missing", "extra"], table))
    if store.corrupt:
        print(f"{len(store.corrupt)} unreadable file(s), skipped above; delete them and run the sweep again "
              "to recompute those trials:")
        for path in store.corrupt:
            print(f"  {store.uri(path)}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    check_address(args.address)
    store = _open_store(args.store, for_writing=True)
    from isosweep.orchestrator import driver

    counts, planned = driver.resume_sweep(store, args.name, args.address)
    print(f"{args.name}: ok {counts['ok']}, failed {counts['failed']}, diverged {counts['diverged']}, "
          f"missing {counts['missing']} of {planned}", flush=True)
    return 0 if counts["ok"] == planned else 1


def cmd_compact(args: argparse.Namespace) -> int:
    from isosweep.orchestrator.compact import compact
    from isosweep.orchestrator.faults import compact_kill_point

    store = _open_store(args.store, for_writing=True)
    report = compact(store, kill=compact_kill_point)
    print(f"compacted {report.merged_files} file(s) into {report.written_files} file(s)"
          + (f"; kept {len(report.kept_changed)} that changed meanwhile" if report.kept_changed else "")
          + (f"; skipped {len(report.skipped_corrupt)} unreadable: {', '.join(report.skipped_corrupt)}" if report.skipped_corrupt else ""))
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    from isosweep.analysis.db import run_query
    from isosweep.analysis.formatting import FORMATTERS
    from isosweep.analysis.queries import named_query

    if args.format == "parquet" and not args.out:
        raise UsageError("--format parquet needs --out FILE")
    sql = args.sql
    if sql.startswith("@"):
        try:
            sql = named_query(sql[1:])
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
    store = _open_store(args.store, for_writing=False)
    try:
        result = run_query(store.url, sql, as_arrow=args.format == "parquet")
    except duckdb.Error as exc:
        raise UsageError(f"query failed: {first_line(exc)}") from None
    if not result.columns:
        raise UsageError("the query returned no result set; write a SELECT over trials, dims, curves or points")
    if result.table is not None:
        import pyarrow.parquet as pq

        pq.write_table(result.table, args.out)
        return 0
    text = FORMATTERS[args.format](result.columns, result.rows)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from isosweep.analysis.report import check_out_dir, default_out, make_report

    study = get_study(args.study)
    if args.budget is not None:
        study.budget(args.budget)
    store = _open_store(args.store, for_writing=False)
    out = args.out if args.out is not None else default_out(study.name)
    check_out_dir(out)
    result = make_report(store.url, study.name, out, args.budget)
    doc = result.document
    print(f"{result.out}: report.md, report.html, {len(doc.figures())} figure(s), {len(doc.tables())} table(s) "
          f"for study {study.name} at budget {result.budget}"
          + (f"; {result.warnings} note(s) on what is missing" if result.warnings else ""))
    return 0


COMMANDS = {"studies": cmd_studies, "run": cmd_run, "resume": cmd_resume, "status": cmd_status,
            "query": cmd_query, "compact": cmd_compact, "report": cmd_report}


def main(argv: Sequence[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `isosweep query ... | head` ends quietly
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"isosweep: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("isosweep: interrupted; completed trials are kept, run the same command again to finish", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
