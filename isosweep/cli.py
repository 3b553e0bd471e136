"""The ``isosweep`` command line (docs/architecture.md, "CLI"): it parses the arguments
(``isosweep.arguments``), calls the Python API (``isosweep.sweeps``, ``isosweep.analysis``) and
prints what it returns.

Exit codes: 0 success; 1 the command ran but some trials failed; 2 bad usage or bad input, with
one line on stderr that says what is wrong and how to fix it, and nothing written.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from isosweep import sweeps
from isosweep.analysis.formatting import FORMATTERS, as_table
from isosweep.analysis.queries import named_query
from isosweep.arguments import build_parser
from isosweep.errors import NoSpaceError, UsageError, first_line, no_space, no_space_path
from isosweep.interrupts import deferred_interrupt, exit_code_for_interrupt, stop_signals_as_ctrl_c
from isosweep.optional import installed, require
from isosweep.orchestrator.compact import compact
from isosweep.orchestrator.faults import compact_kill_point
from isosweep.paths import expand_home, inside, not_a_regular_file
from isosweep.store import UNREADABLE_FIX, Store, default_store_url, replace_file
from isosweep.studies import STUDIES, get_study

if TYPE_CHECKING:  # DuckDB is imported by the commands that query (isosweep.optional)
    from isosweep.analysis.db import QueryResult

__all__ = ["build_parser", "main"]


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
    options = {
        "name": args.name,
        "max_trials": args.max_trials,
        "fuse": args.fuse,
        "gpus_per_trial": args.gpus_per_trial,
        "cpus_per_trial": args.cpus_per_trial,
        "max_concurrent": args.max_concurrent,
        "max_failures": args.max_failures,
        "address": args.address,
        "data_root": args.data_root,
        "data": args.data,
        "features": args.features,
        "density_column": args.density_column,
        "latent_dim": args.latent_dim,
        "search": args.search,
        "num_samples": args.num_samples,
        "lam_range": args.lam_range,
        "force": args.force,
        "compact": not args.no_compact,
        "executor": args.executor,
    }
    where = {"budget": args.budget, "where": args.where, "seeds": args.seeds, "store": args.store}
    if args.dry_run:
        planned = sweeps.plan(args.study, **where, **options)
        print(planned.line, flush=True)
        for i, bundle in enumerate(planned.bundles):
            print(f"  bundle {i}: {len(bundle)} trial(s): {' '.join(c.key for c in bundle)}")
        return 0
    result = sweeps.run(args.study, **where, **options)
    if result.search:
        print(
            f"{result.sweep}: ok {result.ok}, failed {result.failed}, diverged {result.diverged} trial(s) in the search",
            flush=True,
        )
        _print_summary(result)
        return 0 if result.failed == result.diverged == 0 else 1
    print(_counts_line(result), flush=True)
    _print_summary(result)
    return 0 if result.ok == result.planned else 1


def _print_summary(result: sweeps.SweepResult) -> None:
    if result.ok and not installed("duckdb"):
        print(
            "isosweep: note: the summary table needs duckdb, which is not installed here; the results are in the store"
        )
        return
    table = result.summary()
    if table is not None:
        print(table)


def _counts_line(result: sweeps.SweepResult) -> str:
    """The closing line of a run or resume: the planned trials' states (damaged ones only where any)."""
    damaged = f"damaged {result.damaged}, " if result.damaged else ""
    return (
        f"{result.sweep}: ok {result.ok}, failed {result.failed}, diverged {result.diverged}, {damaged}"
        f"missing {result.missing} of {result.planned}"
    )


def cmd_status(args: argparse.Namespace) -> int:
    status = sweeps.status(args.store)
    damaged = status.damaged
    table = [
        (
            row.study,
            row.budget,
            row.planned,
            row.ok,
            row.failed,
            row.diverged,
            *([row.damaged] if damaged else []),  # the damaged column only where there are damaged trials
            row.missing,
            row.extra,
        )
        for row in status.rows
    ]
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
    if status.unreadable:
        print(f"{len(status.unreadable)} unreadable file(s), skipped above; {UNREADABLE_FIX}:")
        for uri in status.unreadable:
            print(f"  {uri}")
    return 0


LISTED = 20
"""Damaged trials that ``status`` names one by one; it counts the rest."""


def cmd_resume(args: argparse.Namespace) -> int:
    result = sweeps.resume(
        args.store, args.name, address=args.address, compact=not args.no_compact, executor=args.executor
    )
    print(_counts_line(result), flush=True)
    return 0 if result.ok == result.planned else 1


def cmd_compact(args: argparse.Namespace) -> int:
    store = sweeps.open_store(args.store, for_writing=True, must_exist=True)
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
    # KeyboardInterrupt raised inside the store's first listing could be lost
    # in a finalizer, and the query would then run to its end.
    with deferred_interrupt():
        result = _query_result(args)
    return _write_query_result(args, result)


def _query_result(args: argparse.Namespace) -> QueryResult:
    require("duckdb", "isosweep query")
    import duckdb

    from isosweep.analysis.db import run_query

    if args.format == "parquet" and not args.out:
        raise UsageError("--format parquet needs --out FILE")
    sql = args.sql
    if sql.startswith("@"):
        try:
            sql = named_query(sql[1:])
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
    store = sweeps.open_store(args.store, for_writing=False, must_exist=True)
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
    try:
        if result.table is not None:
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
    # The report's figures need matplotlib: imported for this command only (start-up speed).
    require("duckdb", "isosweep report")
    from isosweep.analysis.report import check_out_dir, default_out, make_report

    study = get_study(args.study)
    if args.budget is not None:
        study.budget(args.budget)
    store = sweeps.open_store(args.store, for_writing=False, must_exist=True)
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
    except sweeps.SweepInterrupted as exc:
        print(f"isosweep: {exc.hint()}", file=sys.stderr)
        return exit_code_for_interrupt()
    except KeyboardInterrupt:
        print(f"isosweep: {INTERRUPTED.get(command or '', 'interrupted')}", file=sys.stderr)
        return exit_code_for_interrupt()


if __name__ == "__main__":
    sys.exit(main())
